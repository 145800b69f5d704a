#include "nodenomad/file_system.hpp"

#include <fmt/format.h>

namespace nodenomad {

std::string join_path(std::string_view dir, std::string_view name) {
  if (dir.empty()) return std::string(name);
  std::string out(dir);
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  std::size_t skip = 0;
  while (skip < name.size() && name[skip] == '/') ++skip;
  if (out != "/") out += '/';
  out.append(name.substr(skip));
  return out;
}

std::string parent_dir(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  const std::size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

Result<std::string> read_whole_file(FileSystem& fs, const std::string& path) {
  NN_ASSIGN_OR_RETURN(auto file, fs.open_readable(path));
  NN_ASSIGN_OR_RETURN(std::uint64_t size, file->size());
  std::string data(static_cast<std::size_t>(size), '\0');
  std::size_t filled = 0;
  while (filled < data.size()) {
    NN_ASSIGN_OR_RETURN(std::size_t got,
                        file->read_at(filled, std::span<char>(data.data() + filled,
                                                              data.size() - filled)));
    if (got == 0) break;
    filled += got;
  }
  data.resize(filled);
  return data;
}

Status write_file_atomically(FileSystem& fs, const std::string& path, std::string_view data) {
  const std::string tmp = path + ".tmp";
  {
    NN_ASSIGN_OR_RETURN(auto file, fs.open_writable(tmp, WriteMode::kTruncate));
    NN_RETURN_IF_ERROR(file->append(data));
    NN_RETURN_IF_ERROR(file->sync());
    NN_RETURN_IF_ERROR(file->close());
  }
  NN_RETURN_IF_ERROR(fs.rename(tmp, path));
  return fs.sync_dir(parent_dir(path));
}

}  // namespace nodenomad
