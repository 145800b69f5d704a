// /proc readers for migration_bench: the calling thread's id and CPU pin,
// a process's peak RSS (and its reset), and CPU and run-queue time per
// thread role ("loop", "disk", "digest", ...; see migration_bench_support.hpp
// for the threads). They run while a node serves writes, so they allocate
// nothing of 1 KiB or more.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

namespace nodenomad::migration_bench {

inline pid_t current_tid() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

// The calling thread (and the threads and processes it starts later) runs
// on `cpu` only. Async-signal-safe: a forked child calls it before exec.
inline bool pin_to_cpu(int cpu) {
  cpu_set_t only;
  CPU_ZERO(&only);
  CPU_SET(cpu, &only);
  return ::sched_setaffinity(0, sizeof(only), &only) == 0;
}

// The /proc reads and writes below run while a node serves writes, so they
// allocate nothing of 1 KiB or more (no ifstream, no opendir): such a malloc
// makes glibc consolidate its arena's fast bins under the arena lock, and the
// node's loop, freeing records in that arena, waited 40-60 ms for it.
inline std::size_t read_proc_file(const char* path, char* buf, std::size_t size) {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  const ssize_t n = ::read(fd, buf, size - 1);
  ::close(fd);
  const std::size_t got = n > 0 ? static_cast<std::size_t>(n) : 0;
  buf[got] = '\0';
  return got;
}

// A "VmHWM:"-style field of /proc/<pid>/status in MiB; -1 if unreadable.
inline double proc_status_mib(pid_t pid, const std::string& field) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/status", static_cast<int>(pid));
  char text[4096];
  read_proc_file(path, text, sizeof text);
  const std::string key = "\n" + field + ":";
  const char* at = std::strstr(text, key.c_str());
  return at == nullptr ? -1 : std::strtod(at + key.size(), nullptr) / 1024.0;
}

// Resets the peak RSS (VmHWM) of `pid` to its current RSS; false if the
// kernel refused.
inline bool reset_peak_rss(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/clear_refs", static_cast<int>(pid));
  const int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::write(fd, "5", 1) == 1;
  ::close(fd);
  return ok;
}

// Per thread category of one process: seconds on a CPU, and seconds
// runnable but waiting for one (the run queue: what other processes on a
// shared machine cost us). From /proc/<pid>/task/<tid>/schedstat.
struct ThreadTime {
  double cpu_s = 0;
  double wait_s = 0;
};
using CpuByRole = std::map<std::string, ThreadTime>;

inline std::string thread_role(pid_t pid, pid_t tid, pid_t loop_tid, const std::string& comm) {
  if (tid == pid) return "main";
  if (tid == loop_tid) return "loop";
  if (comm == "nn-sync") return "disk";
  if (comm == "nn-digest") return "digest";
  if (comm == "nn-snapshot") return "snapshot";
  if (comm == "nn-restore") return "restore";
  if (comm == "nn-disk-work") return "diskwork";
  if (comm == "nn-client") return "client";
  return "other";
}

inline CpuByRole thread_cpu(pid_t pid, pid_t loop_tid) {
  CpuByRole out;
  char dir[64];
  std::snprintf(dir, sizeof dir, "/proc/%d/task", static_cast<int>(pid));
  const int dir_fd = ::open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return out;
  alignas(8) char entries[512];
  for (;;) {
    const long n = ::syscall(SYS_getdents64, dir_fd, entries, sizeof entries);
    if (n <= 0) break;
    for (long at = 0; at < n;) {
      struct Dirent64 {
        std::uint64_t ino;
        std::int64_t off;
        unsigned short reclen;
        unsigned char type;
        char name[1];
      };
      const auto* e = reinterpret_cast<const Dirent64*>(entries + at);
      at += e->reclen;
      if (e->name[0] < '0' || e->name[0] > '9') continue;
      const pid_t tid = static_cast<pid_t>(std::strtol(e->name, nullptr, 10));
      char path[96];
      char text[128];
      std::snprintf(path, sizeof path, "%s/%d/comm", dir, static_cast<int>(tid));
      read_proc_file(path, text, sizeof text);
      const std::string comm(text, std::strcspn(text, "\n"));
      std::snprintf(path, sizeof path, "%s/%d/schedstat", dir, static_cast<int>(tid));
      double on_cpu_ns = 0;
      double waiting_ns = 0;
      if (read_proc_file(path, text, sizeof text) == 0 ||
          std::sscanf(text, "%lf %lf", &on_cpu_ns, &waiting_ns) != 2) {
        continue;
      }
      ThreadTime& t = out[thread_role(pid, tid, loop_tid, comm)];
      t.cpu_s += on_cpu_ns / 1e9;
      t.wait_s += waiting_ns / 1e9;
    }
  }
  ::close(dir_fd);
  return out;
}

inline CpuByRole cpu_delta(const CpuByRole& after, const CpuByRole& before) {
  CpuByRole out;
  for (const auto& [role, t] : after) {
    auto it = before.find(role);
    const ThreadTime zero;
    const ThreadTime& b = it == before.end() ? zero : it->second;
    out[role] = ThreadTime{t.cpu_s - b.cpu_s, t.wait_s - b.wait_s};
  }
  return out;
}

}  // namespace nodenomad::migration_bench
