#include "dashboard/views.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "dashboard/render.hpp"
#include "storage/sqlite_store.hpp"
#include "storage/testing.hpp"

namespace ratchet::dashboard {
namespace {

using json = nlohmann::json;

class ViewsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/ratchet-views-XXXXXX";
    dir_ = mkdtemp(pattern);
    store_ = std::move(open_sqlite_store(dir_ + "/ratchet.db", clock_, {})).value();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::string call(const std::string& function, const std::string& parent = "") {
    NewCall c;
    c.function = function;
    c.endpoint = "http://127.0.0.1:1";
    c.parent_id = parent;
    c.root_id = parent;
    std::string id = testing::dispatch_call(*store_, c);
    EXPECT_FALSE(id.empty());
    return id;
  }

  // A finished job (its supervisor is not needed) with env and a stdout log.
  JobRecord job(const std::string& log) {
    JobRequest r;
    r.run_key = "nightly";
    r.command = {"sh", "-c", "make"};
    r.env = {{"MODE", "full"}, {"DB_PASSWORD", "hunter2"}};
    r.log_dir = dir_;
    r.supervisor = {1, 1, "boot"};
    auto started = store_->start_job(r, [](const JobRecord&, std::string*) { return true; });
    EXPECT_TRUE(started.is_ok());
    EXPECT_TRUE(store_->finish_job(started->job.id, {RunStatus::kSucceeded, 0, {}, {}}).value());
    std::ofstream(started->job.stdout_file) << log;
    return started->job;
  }

  FakeClock clock_;
  std::string dir_;
  std::unique_ptr<Store> store_;
};

TEST(ParseQuery, DecodesPercentAndPlus) {
  Params params = parse_query("name=a%2Fb+c&status=FAILED&empty=&bad=%zz&flag");
  EXPECT_EQ(params["name"], "a/b c");
  EXPECT_EQ(params["status"], "FAILED");
  EXPECT_EQ(params["empty"], "");
  EXPECT_EQ(params["bad"], "%zz");
  EXPECT_TRUE(params.count("flag"));
}

TEST_F(ViewsTest, RunsPagesFollowTheCursorAndRejectBadFilters) {
  for (int i = 0; i < 5; ++i) call("greet");
  auto first = runs_view(*store_, parse_query("limit=3&kind=call"));
  ASSERT_TRUE(first.is_ok()) << first.status().message();
  EXPECT_EQ((*first)["runs"].size(), 3u);
  std::string cursor = (*first)["next_cursor"];
  ASSERT_FALSE(cursor.empty());
  auto second = runs_view(*store_, {{"limit", "3"}, {"cursor", cursor}});
  ASSERT_TRUE(second.is_ok());
  EXPECT_EQ((*second)["runs"].size(), 2u);
  EXPECT_EQ((*second)["next_cursor"], "");
  EXPECT_EQ((*second)["runs"][0]["function"], "greet");

  for (std::string bad : {"status=DONE", "kind=task", "limit=0", "limit=x", "scope=some",
                          "from=yesterday", "cursor=abc"}) {
    auto page = runs_view(*store_, parse_query(bad));
    ASSERT_FALSE(page.is_ok()) << bad;
    EXPECT_EQ(page.status().code(), Code::kInvalidArgument) << bad;
  }
  EXPECT_TRUE(runs_view(*store_, parse_query("from=2020-01-01&to=1")).is_ok());
}

TEST_F(ViewsTest, TheTreeOfAFanOutOf100HasEveryChildAndGrandchild) {
  std::string root = call("fanout");
  std::vector<std::string> children;
  for (int i = 0; i < 100; ++i) children.push_back(call("square", root));
  std::string grandchild = call("leaf", children[7]);
  auto tree = tree_view(*store_, root, clock_.now());
  ASSERT_TRUE(tree.is_ok()) << tree.status().message();
  const json& nodes = (*tree)["nodes"];
  ASSERT_EQ(nodes.size(), 102u);
  EXPECT_EQ(nodes[0]["id"], root);
  EXPECT_EQ(nodes[0]["depth"], 0);
  EXPECT_EQ(nodes[1]["parent_id"], root);
  EXPECT_EQ(nodes[101]["id"], grandchild);
  EXPECT_EQ(nodes[101]["parent_id"], children[7]);
  EXPECT_EQ(nodes[101]["depth"], 2);
  EXPECT_EQ((*tree)["truncated"], false);
  EXPECT_EQ(tree_view(*store_, "nope", 0).status().code(), Code::kNotFound);
}

using Nodes = std::vector<std::pair<std::string, int>>;  // id and depth

// A tree as tree_view read it before it read a level at once: the children of
// each parent in turn (Store::child_calls), as many as fit. Whether it was
// truncated goes to `truncated`.
Nodes parent_by_parent(Store& store, const std::string& root, bool& truncated) {
  Nodes nodes{{root, 0}};
  truncated = false;
  std::vector<std::string> level{root};
  for (int depth = 1; depth <= 2 && !level.empty(); ++depth) {
    std::vector<std::string> next;
    for (const auto& parent : level) {
      int room = std::min<int>(kTreeChildren, kTreeNodes - static_cast<int>(nodes.size()));
      if (room <= 0) {
        truncated = true;
        break;
      }
      auto children = store.child_calls(parent, room + 1);
      EXPECT_TRUE(children.is_ok()) << children.status().message();
      if (!children.is_ok()) return nodes;
      if (static_cast<int>(children->size()) > room) {
        truncated = true;
        children->pop_back();
      }
      for (const auto& child : *children) {
        nodes.emplace_back(child.id, depth);
        next.push_back(child.id);
      }
    }
    level = std::move(next);
  }
  return nodes;
}

Nodes shown(const json& tree) {
  Nodes nodes;
  for (const auto& node : tree["nodes"]) {
    nodes.emplace_back(node["id"].get<std::string>(), node["depth"].get<int>());
  }
  return nodes;
}

// The tree reads a level at once (Store::child_calls_of): it shows what the
// read of each parent's children in turn showed.
TEST_F(ViewsTest, ATreeOfThreeChildrenWithTwoGrandchildrenEachReadsAsParentByParent) {
  std::string root = call("fanout");
  std::vector<std::string> children;
  for (int i = 0; i < 3; ++i) {
    children.push_back(call("square", root));
    clock_.advance(1);
  }
  // The grandchildren dispatched last child first, so that their rows are in
  // the opposite order to their parents'.
  std::vector<std::vector<std::string>> grandchildren(3);
  for (int i = 2; i >= 0; --i) {
    for (int j = 0; j < 2; ++j) {
      grandchildren[i].push_back(call("leaf", children[i]));
      clock_.advance(1);
    }
  }
  Nodes expected{{root, 0}};
  for (const auto& child : children) expected.emplace_back(child, 1);
  for (const auto& level : grandchildren) {
    for (const auto& grandchild : level) expected.emplace_back(grandchild, 2);
  }
  bool truncated = true;
  EXPECT_EQ(parent_by_parent(*store_, root, truncated), expected);
  EXPECT_FALSE(truncated);

  auto tree = tree_view(*store_, root, clock_.now());
  ASSERT_TRUE(tree.is_ok()) << tree.status().message();
  EXPECT_EQ(shown(*tree), expected) << dump(*tree);
  EXPECT_EQ((*tree)["nodes"][4]["parent_id"], children[0]);
  EXPECT_EQ((*tree)["truncated"], false);
}

// At both limits (kTreeChildren under a call, kTreeNodes in all) the tree
// keeps the same nodes as the parent-by-parent read, and says it is truncated.
TEST_F(ViewsTest, ATreeOverBothLimitsKeepsTheNodesOfTheParentByParentRead) {
  std::string root;
  Status made = store_->calls([&](CallTransaction& tx) -> Status {
    NewCall c;
    c.function = "fanout";
    c.endpoint = "http://127.0.0.1:1";
    ASSIGN_OR_RETURN(root, tx.dispatch(c));
    c.parent_id = c.root_id = root;
    std::vector<std::string> children;
    for (int i = 0; i <= kTreeChildren; ++i) {
      ASSIGN_OR_RETURN(auto child, tx.dispatch(c));
      children.push_back(child);
    }
    // Five children with one more than fits each: the fifth is past kTreeNodes.
    for (int i = 0; i < 5; ++i) {
      c.parent_id = children[i];
      for (int j = 0; j <= kTreeChildren; ++j) RETURN_IF_ERROR(tx.dispatch(c).status());
    }
    return Status::ok();
  });
  ASSERT_TRUE(made.is_ok()) << made.message();
  bool truncated = false;
  Nodes before = parent_by_parent(*store_, root, truncated);
  ASSERT_EQ(before.size(), static_cast<std::size_t>(kTreeNodes));
  ASSERT_TRUE(truncated);

  auto tree = tree_view(*store_, root, clock_.now());
  ASSERT_TRUE(tree.is_ok()) << tree.status().message();
  EXPECT_TRUE(shown(*tree) == before) << "the nodes differ";
  EXPECT_EQ((*tree)["truncated"], true);
  // The root and its first four children show kTreeChildren (the fourth fewer,
  // as the tree fills) of kTreeChildren + 1; the fifth shows none, unread.
  const json& nodes = (*tree)["nodes"];
  for (int i = 0; i <= 4; ++i) EXPECT_EQ(nodes[i].value("more_children", false), true) << i;
  EXPECT_FALSE(nodes[5].contains("more_children"));
  EXPECT_FALSE(nodes[kTreeChildren + 1].contains("more_children"));
}

TEST_F(ViewsTest, ACallShowsItsInputAndState) {
  std::string id = call("greet");
  auto shown = call_view(*store_, id);
  ASSERT_TRUE(shown.is_ok());
  EXPECT_EQ((*shown)["function"], "greet");
  EXPECT_EQ((*shown)["status"], "STARTING");
  EXPECT_EQ((*shown)["input"]["kind"], "none");
  EXPECT_EQ(call_view(*store_, "nope").status().code(), Code::kNotFound);
}

TEST_F(ViewsTest, ACallRestartedByADivergedReplayShowsTheStep) {
  std::string id = call("pipeline");
  auto restart = [&](CallError reason) {
    ASSERT_TRUE(
        store_
            ->calls([&](CallTransaction& tx) -> Status {
              ASSIGN_OR_RETURN(auto claimed, testing::claim_due(tx, "me", clock_.now() + 1000, 10));
              if (claimed.empty()) return internal_error("nothing to claim");
              return tx.restart(id, claimed[0].call.lease_epoch, clock_.now(), reason).status();
            })
            .is_ok());
  };
  restart({"IncompatibleStateError", "step 3 diverged: the code now calls shout, not greet", ""});
  auto view = call_view(*store_, id);
  ASSERT_TRUE(view.is_ok()) << view.status().message();
  EXPECT_EQ((*view)["diverged_at"], 3) << view->dump();
  EXPECT_EQ((*view)["error"]["type"], "IncompatibleStateError");
  // Another endpoint's INCOMPATIBLE_STATE says nothing of steps.
  restart({"IncompatibleStateError", "state version 2 is not 1", ""});
  EXPECT_FALSE(call_view(*store_, id)->contains("diverged_at"));
}

TEST_F(ViewsTest, AJobMasksSecretsAndItsLogsReadFromAnOffset) {
  JobRecord made = job("line one\nline two\n");
  auto shown = job_view(*store_, made.id);
  ASSERT_TRUE(shown.is_ok()) << shown.status().message();
  EXPECT_EQ((*shown)["command"], json({"sh", "-c", "make"}));
  EXPECT_EQ((*shown)["env"][0]["value"], "full");
  EXPECT_EQ((*shown)["env"][1]["masked"], true);
  EXPECT_EQ(dump(*shown).find("hunter2"), std::string::npos);
  EXPECT_EQ((*shown)["attempts"].size(), 1u);

  auto logs = logs_view(*store_, made.id, {});
  ASSERT_TRUE(logs.is_ok()) << logs.status().message();
  EXPECT_EQ((*logs)["data"], "line one\nline two\n");
  EXPECT_EQ((*logs)["ended"], true);
  auto rest = logs_view(*store_, made.id, {{"offset", "9"}});
  EXPECT_EQ((*rest)["data"], "line two\n");
  EXPECT_EQ((*rest)["next_offset"], 18);
  auto past_end = logs_view(*store_, made.id, {{"offset", "1000"}});
  EXPECT_EQ((*past_end)["data"], "");
  EXPECT_EQ(logs_view(*store_, made.id, {{"stream", "stdin"}}).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(logs_view(*store_, made.id, {{"offset", "-1"}}).status().code(),
            Code::kInvalidArgument);
}

TEST_F(ViewsTest, ALogReplacedByAFifoIsUnavailableNotAHungThread) {
  // open() of a FIFO waits for a writer: the server's thread hung for good.
  JobRecord made = job("output\n");
  ASSERT_EQ(unlink(made.stdout_file.c_str()), 0);
  ASSERT_EQ(mkfifo(made.stdout_file.c_str(), 0600), 0);
  auto logs = logs_view(*store_, made.id, {});
  ASSERT_FALSE(logs.is_ok());
  EXPECT_EQ(logs.status().code(), Code::kUnavailable);
  EXPECT_NE(logs.status().message().find("is a FIFO, not a regular file"), std::string::npos)
      << logs.status().message();
}

TEST_F(ViewsTest, HealthCountsTheRunsRunning) {
  call("greet");
  call("greet");
  auto health = health_view(*store_, clock_.now());
  ASSERT_TRUE(health.is_ok()) << health.status().message();
  EXPECT_EQ((*health)["calls_running"], 2);
  EXPECT_EQ((*health)["jobs_running"], 0);
  EXPECT_TRUE((*health)["finished"].empty()) << dump(*health);
}

TEST_F(ViewsTest, TheTimelineShowsACallsLatestEventsAndCountsTheRest) {
  std::string root = call("greet");
  std::string child = call("child", root);
  std::vector<HistoryEvent> events;
  for (int i = 1; i <= 1000; ++i) {
    HistoryEvent event;
    event.call_id = root;
    event.kind = "attempt";
    event.at = i * kMicrosPerSecond;
    event.duration = kMicrosPerMilli;
    event.attempt = i;
    event.call_status = 6;  // STATUS_TEMPORARY_ERROR
    event.outcome = "retry";
    event.detail = "retry; Oops: attempt " + std::to_string(i);
    events.push_back(event);
  }
  ASSERT_TRUE(
      store_->calls([&](CallTransaction& tx) { return tx.record_history(events); }).is_ok());
  ASSERT_TRUE(store_
                  ->calls([&](CallTransaction& tx) -> Status {
                    return tx.cancel(root, "dashboard:api-key:0000beef").status();
                  })
                  .is_ok());

  auto tree = tree_view(*store_, root, clock_.now());
  ASSERT_TRUE(tree.is_ok()) << tree.status().message();
  const json& node = (*tree)["nodes"][0];
  ASSERT_EQ(node["history"].size(), kTimelineEvents) << "the latest only";
  EXPECT_EQ(node["history_total"], 1000) << "and how many there were";
  EXPECT_EQ(node["history"].back()["attempt"], 1000);
  EXPECT_EQ(node["history"].back()["detail"], "retry; Oops: attempt 1000");
  EXPECT_EQ(node["history"].back()["status"], "STATUS_TEMPORARY_ERROR");
  EXPECT_EQ(node["history"].front()["attempt"], 1000 - static_cast<int>(kTimelineEvents) + 1);
  const json& leaf = (*tree)["nodes"][1];
  EXPECT_EQ(leaf["id"], child);
  EXPECT_TRUE(leaf["history"].empty()) << dump(leaf);
  EXPECT_EQ(leaf["history_total"], 0);
  EXPECT_EQ((*tree)["timeline_calls"], 2);
  // The call's own actions: who, what, when.
  ASSERT_EQ((*tree)["actions"].size(), 1u) << dump(*tree);
  EXPECT_EQ((*tree)["actions_total"], 1);
  EXPECT_EQ((*tree)["actions"][0]["actor"], "dashboard:api-key:0000beef");
  EXPECT_EQ((*tree)["actions"][0]["action"], "cancel");
  EXPECT_EQ((*tree)["actions"][0]["at"], clock_.now());
}

}  // namespace
}  // namespace ratchet::dashboard
