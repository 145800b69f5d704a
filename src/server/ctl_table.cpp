// `nodenomadctl status`: GET /v1/cluster as two readable tables.
#include <fmt/format.h>

#include <boost/json.hpp>
#include <vector>

#include "server/ctl_cli.hpp"

namespace nodenomad::ctl {
namespace {

namespace json = boost::json;

struct Column {
  std::string_view header;
  bool right_aligned = false;  // numbers line up on their last digit
};

using Row = std::vector<std::string>;

// Server text on a terminal: control bytes become '?' (no escape sequences).
std::string printable(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) c = '?';
  }
  return out;
}

std::string cell(const json::object& object, std::string_view name) {
  const json::value* v = object.if_contains(name);
  if (v == nullptr || v->is_null()) return "-";
  if (v->is_string()) return v->as_string().empty() ? "-" : printable(v->as_string());
  if (v->is_uint64()) return std::to_string(v->as_uint64());
  if (v->is_int64()) return std::to_string(v->as_int64());
  if (v->is_bool()) return v->as_bool() ? "yes" : "no";
  if (v->is_array()) {
    std::string out;
    for (const json::value& item : v->as_array()) {
      if (!out.empty()) out += ',';
      out += item.is_string() ? printable(item.as_string()) : json::serialize(item);
    }
    return out.empty() ? "-" : out;
  }
  return printable(json::serialize(*v));
}

std::string size_cell(const json::object& object, std::string_view name) {
  const json::value* v = object.if_contains(name);
  const bool is_count = v != nullptr && (v->is_uint64() || (v->is_int64() && v->as_int64() >= 0));
  if (!is_count) return cell(object, name);
  const auto bytes = v->is_uint64() ? v->as_uint64() : static_cast<std::uint64_t>(v->as_int64());
  if (bytes < 1024) return fmt::format("{}B", bytes);
  constexpr std::string_view kUnits[] = {"KB", "MB", "GB", "TB", "PB"};
  double scaled = static_cast<double>(bytes) / 1024;
  std::size_t unit = 0;
  while (scaled >= 1024 && unit + 1 < std::size(kUnits)) {
    scaled /= 1024;
    ++unit;
  }
  return fmt::format("{:.1f}{}", scaled, kUnits[unit]);
}

std::string render_table(const std::vector<Column>& columns, const std::vector<Row>& rows) {
  std::vector<std::size_t> widths;
  for (const Column& c : columns) widths.push_back(c.header.size());
  for (const Row& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  const auto line = [&](const auto& texts) {
    std::string out;
    for (std::size_t i = 0; i < columns.size(); ++i) {
      const std::string_view text = texts[i];
      const bool last = i + 1 == columns.size();
      if (i > 0) out += "  ";
      if (columns[i].right_aligned) {
        out += fmt::format("{:>{}}", text, widths[i]);
      } else {
        out += last ? std::string(text) : fmt::format("{:<{}}", text, widths[i]);
      }
    }
    return out + "\n";
  };
  std::vector<std::string_view> headers;
  for (const Column& c : columns) headers.push_back(c.header);
  std::string out = line(headers);
  for (const Row& row : rows) out += line(row);
  return out;
}

std::vector<const json::object*> objects_in(const json::object& root, std::string_view name) {
  std::vector<const json::object*> out;
  const json::value* v = root.if_contains(name);
  if (v == nullptr || !v->is_array()) return out;
  for (const json::value& item : v->as_array()) {
    if (item.is_object()) out.push_back(&item.as_object());
  }
  return out;
}

std::string nodes_table(const json::object& root) {
  std::vector<Row> rows;
  for (const json::object* node : objects_in(root, "nodes")) {
    rows.push_back({cell(*node, "id"), cell(*node, "address"), cell(*node, "status"),
                    cell(*node, "shards_hosted"), cell(*node, "shards_led")});
  }
  if (rows.empty()) return "no nodes\n";
  return render_table({{"NODE"}, {"ADDRESS"}, {"STATUS"}, {"HOSTED", true}, {"LEADS", true}}, rows);
}

std::string shards_table(const json::object& root) {
  std::vector<Row> rows;
  for (const json::object* shard : objects_in(root, "shards")) {
    rows.push_back({cell(*shard, "id"), cell(*shard, "epoch"), cell(*shard, "leader"),
                    cell(*shard, "keys"), size_cell(*shard, "bytes"), cell(*shard, "replicas"),
                    cell(*shard, "learners")});
  }
  if (rows.empty()) return "no shards\n";
  return render_table({{"SHARD", true},
                       {"EPOCH", true},
                       {"LEADER"},
                       {"KEYS", true},
                       {"SIZE", true},
                       {"REPLICAS"},
                       {"LEARNERS"}},
                      rows);
}

}  // namespace

Result<std::string> render_cluster_table(std::string_view cluster_json) {
  boost::system::error_code ec;
  const json::value value = json::parse(cluster_json, ec);
  if (ec || !value.is_object()) {
    return Status::invalid_argument("the cluster description is not a JSON object");
  }
  const json::object& root = value.as_object();
  return fmt::format("cluster {}, metadata leader {}\n\n{}\n{}", cell(root, "cluster_id"),
                     cell(root, "metadata_leader"), nodes_table(root), shards_table(root));
}

}  // namespace nodenomad::ctl
