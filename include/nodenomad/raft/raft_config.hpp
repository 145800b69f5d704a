// RaftConfig: how one RaftEngine behaves. Plain values; copy freely.
//
// Every duration is counted in ticks (the host calls RaftEngine::tick() at a
// fixed period of its choosing, e.g. every 10 ms) and every bound names its
// unit. validate_raft_config() checks them together and RaftEngine::open()
// refuses a bad config with kInvalidArgument naming the field.
#pragma once

#include <cstdint>

#include "nodenomad/status.hpp"
#include "nodenomad/types.hpp"

namespace nodenomad {

// How the leader answers read_index().
enum class ReadMode : std::uint8_t {
  // Linearizable through a heartbeat round: the leader confirms that a
  // quorum still follows it before the read index is released.
  kReadIndex = 0,
  // The leader skips the round while its lease holds: a quorum acknowledged a
  // heartbeat sent less than election_timeout_ticks - lease_drift_ticks ago,
  // and (check_quorum) none of those followers votes for anyone else until
  // election_timeout_ticks of its own have passed. Safe only if no node's
  // tick runs faster than the leader's by more than lease_drift_ticks per
  // election timeout. Needs check_quorum. Falls back to a round when the
  // lease has lapsed.
  kLease = 1,
};

struct RaftConfig {
  NodeId id;  // this node; must be non-empty

  // A follower that hears nothing from a leader for a randomized timeout in
  // [election_timeout_ticks, 2 * election_timeout_ticks) starts an election.
  std::uint32_t election_timeout_ticks = 10;
  // When non-zero, the randomized timeout is drawn from
  // [election_timeout_ticks, election_timeout_max_ticks] instead, for hosts
  // (and the Raft paper's failover experiment) that want another spread. It
  // never goes below election_timeout_ticks, which check-quorum and leases
  // keep using. 0, or at least election_timeout_ticks.
  std::uint32_t election_timeout_max_ticks = 0;
  // A leader sends heartbeats this often; must be below the election timeout.
  std::uint32_t heartbeat_interval_ticks = 1;

  // A node first asks whether it could win (a pre-vote that changes no term)
  // and campaigns for real only if a quorum says yes, so a node that was cut
  // off cannot raise the term and depose a healthy leader when it returns.
  bool pre_vote = true;
  // A leader that has not heard from a quorum within an election timeout
  // steps down, and a follower that heard from its leader within an election
  // timeout refuses (pre-)votes. Together with pre_vote this keeps a
  // partially connected node from deposing a healthy leader.
  bool check_quorum = true;

  ReadMode read_mode = ReadMode::kReadIndex;
  // kLease only: the most ticks a follower's clock may gain on the leader's
  // within one election timeout; the lease is shortened by this much.
  std::uint32_t lease_drift_ticks = 2;

  // Payload bytes of entries in one append message (at least one entry is
  // always sent, however large).
  std::uint64_t max_append_bytes = 1u << 20;
  // Append messages in flight to one follower in the replicate state.
  std::uint32_t max_inflight_messages = 256;
  // Payload bytes in flight to one follower in the replicate state. It is
  // also the most a leader reads and sends to a follower in one go when the
  // follower's window opens (catching up after a snapshot), and a client's
  // request on the same loop waits behind that: 4 MiB catches a follower up
  // as fast as 32 MiB did (raft_memory_bench) and keeps each burst short
  // (migration_bench's impact run: p99 during a move's catch-up 270 -> 52 ms).
  std::uint64_t max_inflight_bytes = 4u << 20;
  // The same for a learner (a shard move's target before Verify). Its
  // catch-up is background work that no commit waits for, so it gets less
  // per burst: in migration_bench's impact runs, alternated, 1 MiB gave a
  // write p99 during the move of 11-20 ms and 4 MiB 20-38 ms, with the
  // catch-up no slower (docs/benchmarks.md, tenth round). At 1 MiB a
  // learner a 20 ms round trip away catches up at up to ~50 MB/s; raise it
  // for one that far.
  std::uint64_t max_learner_inflight_bytes = 1u << 20;
  // Payload bytes of the newest durable entries kept in memory (0: none),
  // until applied and held by every follower. Applying an entry and sending
  // it to a follower that keeps up then read no LogStore: with FileLogStore
  // that read was 5% of a leader's loop time (docs/raft.md, "Entry cache").
  std::uint64_t entry_cache_bytes = 4u << 20;
  // Payload bytes the leader has appended but not yet committed; beyond it
  // proposals answer kBusy (one proposal is always accepted when nothing is
  // uncommitted, however large).
  std::uint64_t max_uncommitted_bytes = 64u << 20;
  // Payload bytes of committed entries handed out by one Ready (at least one
  // entry is handed out, however large).
  std::uint64_t max_apply_bytes_per_ready = 64u << 20;

  // Bytes of state-machine snapshot per InstallSnapshot chunk.
  std::uint64_t snapshot_chunk_bytes = 1u << 20;
  // Chunks sent but not acknowledged, per follower: the leader keeps them for
  // retransmission, so a snapshot transfer holds at most this many chunks.
  std::uint32_t max_snapshot_chunks_in_flight = 4;
  // A snapshot transfer with no acknowledgement for this many ticks is
  // abandoned (and started over later); until then a transfer interrupted
  // by a lost connection goes on from the last acknowledged chunk. 0: four
  // election timeouts.
  std::uint32_t snapshot_abandon_ticks = 0;

  // Read requests waiting for their heartbeat round (or for the new
  // leader's first commit); beyond it read_index() answers kBusy.
  std::uint32_t max_pending_reads = 4096;

  // For a host that may add a node back under an id it had before, with
  // its store emptied (the node: a shard replica that moved away, was
  // dropped, and moves back). Raft assumes a member never forgets, and such
  // a node has: a candidate or a leader that missed its removal still
  // counts it as the voter it was. Until it has a configuration (it was
  // never bootstrapped and has restored nothing), a node:
  // - with unconfigured_votes false, grants no vote or pre-vote; else the
  //   vote of a member that forgot everything could elect a leader without
  //   the committed entries it missed. A voter added directly with an
  //   empty store then cannot vote until it has the log;
  bool unconfigured_votes = true;
  // - with members_join_as_learners, takes no snapshot that names it a
  //   voter. A host that adds every member as a learner and promotes it
  //   only once it holds the state can only be sent one from before the
  //   node left (a leader that lags, or a late message); restoring it would
  //   make the node a voter of the old group again. The leader's side needs
  //   no setting: it never sends a snapshot whose configuration names a
  //   peer from before it left (docs/raft.md, "Snapshots").
  bool members_join_as_learners = false;
};

// kInvalidArgument naming the first field out of range, or OK.
Status validate_raft_config(const RaftConfig& config);

}  // namespace nodenomad
