// Simulator: the one object that owns a run: the event queue and clock, the
// network, the nodes, the clients, the nemesis and the checks. Its methods
// are split by concern: simulator.cpp (setup, the event loop, the hosts'
// callbacks), sim_faults.cpp (the nemesis, crash and restart),
// sim_finish.cpp (healing, convergence, the history check, the result),
// sim_control.cpp (testing::SimControl, the embedding host's hook).
//
// Thread safety: none; one run on one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "nodenomad/clock.hpp"
#include "nodenomad/raft/invariants.hpp"
#include "nodenomad/testing/simulator.hpp"
#include "sim/event_queue.hpp"
#include "sim/sim_clients.hpp"
#include "sim/sim_network.hpp"
#include "sim/sim_node.hpp"
#include "sim/trace.hpp"

namespace nodenomad::sim {

class Simulator final : public NodeHost, public ClientHost, public testing::SimControl {
 public:
  explicit Simulator(testing::SimOptions options);
  ~Simulator() override;

  testing::SimResult run();

  // --- NodeHost and ClientHost ---
  SimTime now() const override { return now_; }
  void send(std::uint32_t from, const Message& message) override;
  void reply(std::uint32_t node, const ClientReply& reply) override;
  void schedule_disk_done(std::uint32_t node, std::uint64_t incarnation, SimTime delay) override;
  void on_soft_state(std::uint32_t node, const SoftState& soft, Term term) override;
  void violation(const Status& status) override;
  Invariants& invariants() override { return invariants_; }
  TraceLog& trace() override { return trace_; }
  void send_request(std::uint32_t node, const ClientRequest& request) override;
  void schedule_client(EventKind kind, std::uint32_t client, std::uint64_t arg,
                       SimTime delay) override;
  // (also SimControl's)
  std::optional<std::uint32_t> node_index(const NodeId& id) const override;

  // --- SimControl (sim_control.cpp) ---
  std::uint64_t now_us() const override { return now_; }
  std::uint32_t node_count() const override;
  const NodeId& node_id(std::uint32_t node) const override;
  const RaftEngine* engine(std::uint32_t node) const override;
  void crash(std::uint32_t node) override;
  void restart(std::uint32_t node) override;
  Status campaign(std::uint32_t node) override;
  void schedule(std::uint64_t at_us, std::function<void(testing::SimControl&)> action) override;
  void stop() override { stopped_ = true; }

 private:
  // --- setup and the loop (simulator.cpp) ---
  void build();
  void schedule(SimEvent event);
  void schedule_tick(std::uint32_t node, SimTime delay);
  // Runs events until `end` (or the step cap, or a failure, or `done()`).
  void run_until(SimTime end, std::uint64_t max_steps, bool (Simulator::*done)() const);
  void dispatch(SimEvent& event);
  void deliver(SimEvent& event);
  void client_arrive(SimEvent& event);
  void after_step();
  void note(TraceCode code, std::uint32_t node, std::string text);
  bool failed() const { return !failure_.is_ok(); }
  // The host's scheduled action `id` (sim_control.cpp).
  void run_host_action(std::uint64_t id);

  // --- faults (sim_faults.cpp) ---
  void schedule_nemesis();
  void on_nemesis();
  void partition_random();
  void cut_one_way();
  void isolate_leader();
  void start_rolling_clog();
  void on_clog_step(std::uint64_t step);
  void crash_random();
  void disk_fault();
  void transfer_leadership();
  void change_membership();
  void rejoin_member();
  void advance_rejoin();
  // False for a member wiped and added back that has not received the
  // group's state yet.
  bool holds_state(const NodeId& id);
  void redraw_skew(std::uint32_t node);
  void redraw_random_skew();
  void heal_network_now();
  void schedule_heal();
  void crash_node(std::uint32_t node, bool tear, std::string_view why);
  void restart_node(std::uint32_t node);
  std::uint32_t down_count() const;
  std::optional<std::uint32_t> leader() const;
  std::optional<std::uint32_t> random_up_node(bool prefer_write_in_flight);

  // --- the end (sim_finish.cpp) ---
  void heal_everything();
  bool converged() const;
  std::string describe_nodes() const;
  Status check_same_state();
  void check_history();
  testing::SimResult result();

  testing::SimOptions options_;
  Rng rng_;         // the root; every component below forks from it
  Rng fault_rng_;   // the nemesis's choices
  testing::SimFaultProfile profile_;
  RaftConfig raft_config_;
  SimNodeConfig node_config_;
  EventQueue queue_;
  TraceLog trace_;
  std::unique_ptr<SimNetwork> network_;
  ManualClock clock_;
  Invariants invariants_;
  std::vector<std::unique_ptr<SimNode>> nodes_;
  std::unique_ptr<testing::SimWorkload> workload_;
  std::unique_ptr<ClientDriver> clients_;
  SimTime now_ = 0;
  bool faults_on_ = true;
  std::vector<std::uint32_t> clog_order_;
  // The member being taken out, wiped and added back (at most one).
  struct Rejoin {
    std::uint32_t node = 0;
    bool wiped = false;
    // The commit index of the leader that was seen without the member: a
    // leader that has not committed that far may still name it from before.
    LogIndex removed_by;
  };
  std::optional<Rejoin> rejoin_;
  std::set<std::uint32_t> awaiting_state_;  // wiped, no state received since
  SimTime clog_step_us_ = 0;
  Status failure_;
  testing::Verdict verdict_ = testing::Verdict::kOk;
  testing::SimStats stats_;
  std::set<std::pair<std::uint64_t, std::uint32_t>> leaders_seen_;  // (term, node)
  // The host's scheduled actions, by id (an event kHostAction carries it).
  std::map<std::uint64_t, std::function<void(testing::SimControl&)>> host_actions_;
  std::uint64_t next_host_action_ = 0;
  bool stopped_ = false;  // the host called stop()
};

}  // namespace nodenomad::sim
