// Values over 64 KiB out of line (storage/blobs.hpp), on each backend: each
// is stored once however many rows use it, comes back byte for byte, is
// written in the transaction of its first reference and goes with its last.
#include <google/protobuf/any.pb.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <future>
#include <thread>

#include "ratchet/sdk/v1/journal.pb.h"
#include "storage/blobs.hpp"
#include "storage/migrate.hpp"
#include "storage/pg_blobs.hpp"
#include "storage/pg_schema.hpp"
#include "storage/schema.hpp"
#include "storage/store_test_support.hpp"
#include "storage/testing.hpp"

namespace ratchet {
namespace {

namespace jv1 = ::ratchet::sdk::v1;

constexpr std::size_t kMiB = 1024 * 1024;

// `size` bytes of every value (NULs included), different for each `seed`.
std::string large_value(std::size_t size, unsigned seed) {
  std::string bytes(size, '\0');
  std::uint32_t x = 2654435761u * (seed + 1);
  for (auto& c : bytes) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x);
  }
  return bytes;
}

class BlobStoreTest : public BackendTest {
 protected:
  NewCall call(const std::string& function, std::string input, std::uint64_t correlation = 0) {
    NewCall c;
    c.function = function;
    c.endpoint = "http://127.0.0.1:1";
    c.input = std::move(input);
    c.correlation_id = correlation;
    return c;
  }

  long long blob_count() { return number("SELECT count(*) FROM blobs"); }

  // SQL for `size` zero bytes, in the backend's dialect.
  std::string zeros(std::size_t size) {
    return postgres() ? "decode(repeat('00', " + std::to_string(size) + "), 'hex')"
                      : "zeroblob(" + std::to_string(size) + ")";
  }

  // Replaces the store with an empty one made by the version before blobs:
  // its migrations up to the one that adds them.
  void recreate_before_blobs() {
    store_.reset();
    if (postgres()) {
      exec("DROP SCHEMA public CASCADE; CREATE SCHEMA public;");
      exec(numbered_store_sql(pg::migrations(), "CREATE TABLE blobs", true));
      return;
    }
    std::filesystem::remove(location_);
    exec(numbered_store_sql(sqlite::migrations(), "CREATE TABLE blobs", false));
  }
  long long blob_bytes() { return number("SELECT coalesce(sum(length(bytes)), 0) FROM blobs"); }

  // Claims call `id` (alone) and ends it with `output`.
  void finish(const std::string& id, const std::string& output) {
    auto claimed = claim();
    ASSERT_EQ(claimed.size(), 1u);
    ASSERT_EQ(claimed[0].call.id, id);
    ASSERT_TRUE(apply([&](CallTransaction& tx) {
      return tx.finish(id, claimed[0].call.lease_epoch, CallEnd{true, 1, output, {}}, {});
    }));
  }
};

RATCHET_ON_BOTH_BACKENDS(BlobStoreTest);

// A fan-out of 100 calls with one 256 KiB input: one blob of 256 KiB, and
// every call reads the input back exactly. 64 KiB stays in the row. (The
// end-to-end test sends 1 MiB; here each dispatch hashes its input, which
// AddressSanitizer makes slow.)
TEST_P(BlobStoreTest, OneLargeInputOfAHundredCallsIsStoredOnce) {
  const std::string input = large_value(kMiB / 4, 1);
  std::vector<std::string> ids;
  for (int i = 0; i < 100; ++i) ids.push_back(dispatch(call("f", input)));
  EXPECT_EQ(blob_count(), 1);
  EXPECT_EQ(blob_bytes(), static_cast<long long>(kMiB / 4));
  EXPECT_EQ(number("SELECT coalesce(sum(length(input)), 0) FROM runs"), 0)
      << "no row keeps the bytes";
  auto claimed = claim(200);
  ASSERT_EQ(claimed.size(), 100u);
  for (const auto& c : claimed) EXPECT_TRUE(c.call.input == input) << c.call.id;
  auto found = store_->find_call(ids[50]);
  ASSERT_TRUE(found.is_ok() && found->has_value());
  EXPECT_TRUE((*found)->input == input);

  dispatch(call("f", large_value(blobs::kThreshold, 2)));
  EXPECT_EQ(blob_count(), 1) << "a value of exactly 64 KiB stays in its row";
}

// A child's 1 MiB output is one blob for its own row and its parent's inbox,
// and the parent's resume carries the bytes.
TEST_P(BlobStoreTest, ALargeOutputIsOneBlobForTheChildAndItsParentsInbox) {
  std::string parent = dispatch(call("parent", "in"));
  claim();
  PollState poll{1, "s", 1, 5, clock_.now() + kMicrosPerSecond};
  ASSERT_TRUE(apply(
      [&](CallTransaction& tx) { return tx.suspend(parent, 1, poll, {call("c", "x", 1)}, {}); }));
  auto child = claim();
  ASSERT_EQ(child.size(), 1u);
  const std::string output = large_value(kMiB, 3);
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.finish(child[0].call.id, 1, CallEnd{true, 1, output, {}}, {});
  }));
  EXPECT_EQ(blob_count(), 1);
  EXPECT_EQ(blob_bytes(), static_cast<long long>(kMiB));
  auto resumed = claim();
  ASSERT_EQ(resumed.size(), 1u);
  ASSERT_EQ(resumed[0].results.size(), 1u);
  ASSERT_TRUE(resumed[0].results[0].output.has_value());
  EXPECT_TRUE(*resumed[0].results[0].output == output);
  auto found = store_->find_call(child[0].call.id);
  ASSERT_TRUE(found.is_ok() && found->has_value());
  EXPECT_TRUE((*found)->output == output);
}

// A whole journal whose step holds `value`, at revision 1, as a C++ SDK sends it.
PollState journal_with(const std::string& value, Micros deadline) {
  jv1::Journal journal;
  journal.set_version(2);
  journal.set_function("parent");
  journal.set_revision(1);
  journal.add_names("type.googleapis.com/google.protobuf.BytesValue");
  auto* step = journal.add_steps();
  step->set_kind(jv1::STEP_KIND_LOCAL);
  step->mutable_output()->set_value(value);
  journal.set_completed(1);
  google::protobuf::Any any;
  any.PackFrom(journal);
  PollState poll{6, any.SerializeAsString(), 1, 5, deadline};
  poll.revision = 1;
  return poll;
}

// A delta on revision 1 that adds a completed step 2 holding `value`.
PollState delta_with(const std::string& value, Micros deadline) {
  jv1::JournalDelta delta;
  delta.set_base_revision(1);
  delta.mutable_changes()->set_revision(2);
  delta.mutable_changes()->set_completed(2);
  auto& step = (*delta.mutable_changes()->mutable_step_updates())[2];
  step.set_kind(jv1::STEP_KIND_LOCAL);
  step.mutable_output()->set_value(value);
  google::protobuf::Any any;
  any.PackFrom(delta);
  PollState poll{6, any.SerializeAsString(), 1, 5, deadline};
  poll.delta = true;
  poll.revision = 2;
  poll.base_revision = 1;
  return poll;
}

// A coroutine's large base and large delta go out of line; the first attempt
// gets the delta back byte for byte, a retry the whole journal with both
// values; the blobs go when the call ends.
TEST_P(BlobStoreTest, ALargeStateAndDeltaComeBackExactlyAndGoWithTheCall) {
  std::string id = dispatch(call("parent", "in"));
  claim();
  const Micros now = clock_.now();
  const std::string first = large_value(200 * 1024, 4);
  const std::string second = large_value(kMiB, 5);
  ASSERT_TRUE(apply(
      [&](CallTransaction& tx) { return tx.suspend(id, 1, journal_with(first, now), {}, {}); }));
  auto base = claim();
  ASSERT_EQ(base.size(), 1u);
  EXPECT_TRUE(base[0].call.poll->state == journal_with(first, now).state);
  const PollState delta = delta_with(second, now);
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.suspend(id, base[0].call.lease_epoch, delta, {}, {});
  }));
  EXPECT_EQ(blob_count(), 2);
  EXPECT_EQ(number("SELECT coalesce(sum(length(delta)), 0) FROM coroutine_deltas"), 0);

  auto echoed = claim();
  ASSERT_EQ(echoed.size(), 1u);
  EXPECT_TRUE(echoed[0].call.poll->state == delta.state) << "the delta, byte for byte";
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.retry(id, echoed[0].call.lease_epoch, clock_.now(), CallError{"X", "y"});
  }));
  auto retried = claim();
  ASSERT_EQ(retried.size(), 1u);
  google::protobuf::Any any;
  jv1::Journal whole;
  ASSERT_TRUE(any.ParseFromString(retried[0].call.poll->state) && any.UnpackTo(&whole));
  ASSERT_EQ(whole.steps_size(), 2);
  EXPECT_TRUE(whole.steps(0).output().value() == first);
  EXPECT_TRUE(whole.steps(1).output().value() == second);

  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.finish(id, retried[0].call.lease_epoch, CallEnd{true, 1, std::string("r"), {}}, {});
  }));
  EXPECT_EQ(blob_count(), 0) << "the state's and the delta's blobs went with them";
}

// A blob is written in the transaction of the row that refers to it: a
// transaction that does not commit (as a kill -9 before the commit) leaves
// neither.
TEST_P(BlobStoreTest, ATransactionThatDoesNotCommitLeavesNoBlob) {
  Status failed = store_->calls([&](CallTransaction& tx) -> Status {
    ASSIGN_OR_RETURN(auto id, tx.dispatch(call("f", large_value(kMiB, 6))));
    (void)id;
    return internal_error("stopped before the commit");
  });
  EXPECT_FALSE(failed.is_ok());
  EXPECT_EQ(number("SELECT count(*) FROM runs"), 0);
  EXPECT_EQ(blob_count(), 0);
}

// `clean` deletes the blobs only the runs it deletes referred to, and keeps
// one that a live call still uses.
TEST_P(BlobStoreTest, CleanDeletesTheBlobsOfTheRunsItDeletesAndKeepsTheOthers) {
  const std::string shared = large_value(kMiB, 7);
  std::string done = dispatch(call("f", shared));
  finish(done, large_value(100 * 1024, 8));
  EXPECT_EQ(blob_count(), 2);
  std::string live = dispatch(call("f", shared));
  auto deleted = store_->delete_terminal_runs({done});
  ASSERT_TRUE(deleted.is_ok()) << deleted.status().message();
  EXPECT_EQ(*deleted, 1);
  EXPECT_EQ(blob_count(), 1) << "the output's blob went; the input's is the live call's too";
  auto found = store_->find_call(live);
  ASSERT_TRUE(found.is_ok() && found->has_value());
  EXPECT_TRUE((*found)->input == shared);
}

// PostgreSQL, where writers run at once: a clean that finds a blob without a
// committed reference while another transaction is writing one to it leaves
// it alone (the writer holds the blob's lock), so the writer's reference
// never dangles.
TEST_P(BlobStoreTest, ACleanDuringAWriteOfTheSameBlobKeepsIt) {
  if (!postgres()) GTEST_SKIP() << "SQLite has one writer at a time";
  const std::string shared = large_value(kMiB, 9);
  std::string done = dispatch(call("f", shared));
  finish(done, "out");
  auto writer_store = open(clock_);
  ASSERT_NE(writer_store, nullptr);
  std::promise<void> written;
  std::promise<void> go_on;
  std::string second;
  std::thread writer([&] {
    Status status = writer_store->calls([&](CallTransaction& tx) -> Status {
      ASSIGN_OR_RETURN(second, tx.dispatch(call("f", shared)));
      written.set_value();
      go_on.get_future().wait();
      return Status::ok();
    });
    EXPECT_TRUE(status.is_ok()) << status.message();
  });
  written.get_future().wait();
  auto deleted = store_->delete_terminal_runs({done});
  go_on.set_value();
  writer.join();
  ASSERT_TRUE(deleted.is_ok()) << deleted.status().message();
  EXPECT_EQ(blob_count(), 1);
  auto found = store_->find_call(second);
  ASSERT_TRUE(found.is_ok() && found->has_value());
  EXPECT_TRUE((*found)->input == shared) << "the second call's input is gone";
}

// PostgreSQL's sweep goes through the blobs in transactions of a few (one
// transaction would hold a lock per blob, more than PostgreSQL's lock table
// holds in a large clean), passing over one being written and keeping one in
// use.
TEST_P(BlobStoreTest, ASweepGoesThroughTheBlobsInBatchesPassingOverOneBeingWritten) {
  if (!postgres()) GTEST_SKIP() << "SQLite's sweep is one statement and takes no locks";
  const std::string used = large_value(kMiB, 22);
  dispatch(call("f", used));
  auto sweeper = pg::Connection::open(location_, {});
  ASSERT_TRUE(sweeper.is_ok()) << sweeper.status().message();
  for (char i = 1; i <= 5; ++i) {
    ASSERT_TRUE((*sweeper)
                    ->run("INSERT INTO blobs (digest, bytes) VALUES ($1, $2)",
                          pg::Params().add_bytes(std::string(32, i)).add_bytes("garbage"))
                    .is_ok());
  }
  auto writer = pg::Connection::open(location_, {});
  ASSERT_TRUE(writer.is_ok()) << writer.status().message();
  ASSERT_TRUE((*writer)->exec("BEGIN").is_ok());
  ASSERT_TRUE((*writer)
                  ->query("SELECT pg_advisory_xact_lock_shared($1)",
                          pg::Params().add(blobs::lock_key(std::string(32, 3))))
                  .is_ok());

  auto swept = pg::sweep_all_blobs(**sweeper, 2);
  ASSERT_TRUE(swept.is_ok()) << swept.status().message();
  EXPECT_EQ(*swept, 4) << "every garbage blob but the one being written";
  EXPECT_EQ(blob_count(), 2);
  ASSERT_TRUE((*writer)->exec("COMMIT").is_ok());
  swept = pg::sweep_all_blobs(**sweeper, 2);
  ASSERT_TRUE(swept.is_ok()) << swept.status().message();
  EXPECT_EQ(*swept, 1);
  EXPECT_EQ(blob_count(), 1) << "the blob in use stays";
}

// `ratchet migrate` copies the blobs: on PostgreSQL, a finished child's input
// and output and its suspended parent's state and inbox read back exactly.
TEST_P(BlobStoreTest, MigrateCopiesTheBlobsAndTheirValuesReadBackExactly) {
  if (postgres()) GTEST_SKIP() << "migrate copies a SQLite store into PostgreSQL";
  std::optional<testing::PgTestDatabase> target;
  RATCHET_OPEN_PG_DATABASE(target);
  const std::string input = large_value(kMiB, 10);
  const std::string output = large_value(kMiB, 11);
  const Micros now = clock_.now();
  const PollState state = journal_with(large_value(300 * 1024, 12), now + kMicrosPerSecond);
  std::string parent = dispatch(call("parent", input));
  claim();
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.suspend(parent, 1, state, {call("c", input, 1)}, {});
  }));
  auto child = claim();
  ASSERT_EQ(child.size(), 1u);
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.finish(child[0].call.id, 1, CallEnd{true, 1, output, {}}, {});
  }));
  ASSERT_EQ(blob_count(), 3);
  store_.reset();

  auto counts =
      copy_sqlite_to_postgres(location_, target->url(), clock_, [](const MigrationProgress&) {});
  ASSERT_TRUE(counts.is_ok()) << counts.status().message();
  EXPECT_EQ(counts->blobs, 3);
  auto moved = open_store(target->url(), clock_, {});
  ASSERT_TRUE(moved.is_ok()) << moved.status().message();
  auto found = (*moved)->find_call(child[0].call.id);
  ASSERT_TRUE(found.is_ok() && found->has_value());
  EXPECT_TRUE((*found)->input == input);
  EXPECT_TRUE((*found)->output == output);
  std::vector<ClaimedCall> resumed;
  ASSERT_TRUE((*moved)
                  ->calls([&](CallTransaction& tx) -> Status {
                    ASSIGN_OR_RETURN(
                        resumed, testing::claim_due(tx, "server-b", now + kMicrosPerSecond, 10));
                    return Status::ok();
                  })
                  .is_ok());
  ASSERT_EQ(resumed.size(), 1u);
  EXPECT_TRUE(resumed[0].call.input == input);
  EXPECT_TRUE(resumed[0].call.poll->state == state.state);
  ASSERT_EQ(resumed[0].results.size(), 1u);
  EXPECT_TRUE(resumed[0].results[0].output == output);
}

// A blob stays while any row refers to it: a state replaced by the same bytes
// keeps its blob, and a clean that deletes a finished child keeps its output
// for the parent whose inbox still holds it.
TEST_P(BlobStoreTest, ABlobOutlivesEachOfItsReferencesButTheLast) {
  std::string parent = dispatch(call("parent", "in"));
  claim();
  const PollState state = journal_with(large_value(kMiB, 18), clock_.now() + kMicrosPerSecond);
  ASSERT_TRUE(apply(
      [&](CallTransaction& tx) { return tx.suspend(parent, 1, state, {call("c", "x", 1)}, {}); }));
  auto children = claim();
  ASSERT_EQ(children.size(), 1u);
  const std::string output = large_value(kMiB, 19);
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.finish(children[0].call.id, 1, CallEnd{true, 1, output, {}}, {});
  }));
  auto deleted = store_->delete_terminal_runs({children[0].call.id});
  ASSERT_TRUE(deleted.is_ok()) << deleted.status().message();
  ASSERT_EQ(*deleted, 1);
  EXPECT_EQ(blob_count(), 2) << "the state's, and the output the parent has yet to read";

  auto resumed = claim();
  ASSERT_EQ(resumed.size(), 1u);
  ASSERT_EQ(resumed[0].results.size(), 1u);
  ASSERT_TRUE(resumed[0].results[0].output.has_value());
  EXPECT_TRUE(*resumed[0].results[0].output == output);
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.suspend(parent, resumed[0].call.lease_epoch, state, {},
                      {resumed[0].results[0].child_id});
  }));
  EXPECT_EQ(blob_count(), 2) << "the state replaced by the same bytes keeps its blob";
  clock_.advance(2 * kMicrosPerSecond);
  auto again = claim();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_TRUE(again[0].call.poll->state == state.state);
}

// A tail call's new input goes out of line like any; its former one, which no
// row refers to any more, goes at the next clean, and the new one stays.
TEST_P(BlobStoreTest, ATailCallsFormerInputGoesAtTheNextCleanAndItsNewOneStays) {
  const std::string former = large_value(kMiB, 20);
  const std::string next = large_value(kMiB, 21);
  std::string id = dispatch(call("f", former));
  std::string done = dispatch(call("g", "in"));
  ASSERT_EQ(claim().size(), 2u);
  ASSERT_TRUE(apply([&](CallTransaction& tx) { return tx.tail_call(id, 1, "h", next, {}); }));
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.finish(done, 1, CallEnd{true, 1, "out", {}}, {});
  }));
  EXPECT_EQ(blob_count(), 2);
  auto deleted = store_->delete_terminal_runs({done});
  ASSERT_TRUE(deleted.is_ok()) << deleted.status().message();
  EXPECT_EQ(blob_count(), 1) << "the former input went; the new one stays";
  auto claimed = claim();
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(claimed[0].call.function, "h");
  EXPECT_TRUE(claimed[0].call.input == next);
}

// The threshold's edges: 64 KiB + 1 goes out of line and reads back exactly;
// an empty input and output are empty values, not missing ones.
TEST_P(BlobStoreTest, ValuesAtTheThresholdsEdgesAndEmptyOnesReadBackExactly) {
  const std::string over = large_value(blobs::kThreshold + 1, 13);
  std::string big = dispatch(call("f", over));
  EXPECT_EQ(blob_count(), 1) << "64 KiB + 1 goes out of line";
  EXPECT_EQ(number("SELECT coalesce(sum(length(input)), 0) FROM runs"), 0);
  std::string empty = dispatch(call("f", ""));
  auto claimed = claim();
  ASSERT_EQ(claimed.size(), 2u);
  for (const auto& c : claimed) {
    ASSERT_TRUE(apply([&](CallTransaction& tx) {
      return tx.finish(c.call.id, c.call.lease_epoch,
                       CallEnd{true, 1, c.call.id == big ? over : std::string(), {}}, {});
    }));
  }
  auto found = store_->find_call(big);
  ASSERT_TRUE(found.is_ok() && found->has_value()) << found.status().message();
  EXPECT_TRUE((*found)->input == over);
  ASSERT_TRUE((*found)->output.has_value());
  EXPECT_TRUE(*(*found)->output == over);
  EXPECT_EQ(blob_count(), 1) << "the output is the input's blob";
  found = store_->find_call(empty);
  ASSERT_TRUE(found.is_ok() && found->has_value()) << found.status().message();
  EXPECT_EQ((*found)->input, "");
  ASSERT_TRUE((*found)->output.has_value()) << "an empty output is not no output";
  EXPECT_EQ(*(*found)->output, "");
}

// A store made by the version before blobs, whose rows hold values of every
// size in line (1 MiB, 64 KiB + 1, exactly 64 KiB, empty), opens, migrates,
// and reads each back unchanged; what it writes afterwards goes out of line.
TEST_P(BlobStoreTest, AStoreFromBeforeBlobsReadsItsLargeValuesBackUnchanged) {
  recreate_before_blobs();
  const Micros now = clock_.now();
  const std::string t = std::to_string(now);
  exec(
      "INSERT INTO runs (id, kind, status, started_at, updated_at, function, endpoint, "
      "version, input, phase, ready_at, root_id, correlation_id, state_member, poll_min, "
      "poll_max, poll_deadline, results_waiting) VALUES ('parent', 'call', 'RUNNING', " +
      t + ", " + t + ", 'p', 'http://127.0.0.1:1', '', " + zeros(kMiB) + ", 'WAITING', " + t +
      ", 'parent', 0, 1, 1, 5, " + t +
      ", 1);"
      "INSERT INTO runs (id, kind, status, started_at, updated_at, function, endpoint, "
      "version, input, output, phase, parent_id, root_id, correlation_id, finished_at) VALUES "
      "('child', 'call', 'SUCCEEDED', " +
      t + ", " + t + ", 'c', 'http://127.0.0.1:1', '', " + zeros(blobs::kThreshold + 1) + ", " +
      zeros(blobs::kThreshold + 1) + ", 'DONE', 'parent', 'parent', 1, " + t +
      ");"
      "INSERT INTO runs (id, kind, status, started_at, updated_at, function, endpoint, "
      "version, input, output, phase, root_id, correlation_id, finished_at) VALUES "
      "('empty', 'call', 'SUCCEEDED', " +
      t + ", " + t + ", 'e', 'http://127.0.0.1:1', '', " + zeros(0) + ", " + zeros(0) +
      ", 'DONE', 'empty', 0, " + t +
      ");"
      "INSERT INTO call_results (parent_id, child_id, correlation_id, output, arrived_at) "
      "VALUES ('parent', 'child', 1, " +
      zeros(blobs::kThreshold + 1) + ", " + t +
      ");"
      "INSERT INTO coroutine_states (call_id, state) VALUES ('parent', " +
      zeros(blobs::kThreshold) + ");");
  store_ = open(clock_);
  ASSERT_NE(store_, nullptr);

  auto child = store_->find_call("child");
  ASSERT_TRUE(child.is_ok() && child->has_value()) << child.status().message();
  EXPECT_TRUE((*child)->input == std::string(blobs::kThreshold + 1, '\0'));
  ASSERT_TRUE((*child)->output.has_value());
  EXPECT_TRUE(*(*child)->output == std::string(blobs::kThreshold + 1, '\0'));
  auto empty = store_->find_call("empty");
  ASSERT_TRUE(empty.is_ok() && empty->has_value()) << empty.status().message();
  EXPECT_EQ((*empty)->input, "");
  ASSERT_TRUE((*empty)->output.has_value());
  EXPECT_EQ(*(*empty)->output, "");
  auto state = store_->coroutine_state("parent");
  ASSERT_TRUE(state.is_ok() && state->has_value()) << state.status().message();
  EXPECT_TRUE(**state == std::string(blobs::kThreshold, '\0'));

  auto resumed = claim();
  ASSERT_EQ(resumed.size(), 1u);
  EXPECT_TRUE(resumed[0].call.input == std::string(kMiB, '\0'));
  ASSERT_TRUE(resumed[0].call.poll.has_value());
  EXPECT_TRUE(resumed[0].call.poll->state == std::string(blobs::kThreshold, '\0'));
  ASSERT_EQ(resumed[0].results.size(), 1u);
  ASSERT_TRUE(resumed[0].results[0].output.has_value());
  EXPECT_TRUE(*resumed[0].results[0].output == std::string(blobs::kThreshold + 1, '\0'));
  EXPECT_EQ(blob_count(), 0) << "values in line stay there";

  const std::string output = large_value(kMiB, 14);
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.finish("parent", resumed[0].call.lease_epoch, CallEnd{true, 1, output, {}},
                     {"child"});
  }));
  EXPECT_EQ(blob_count(), 1);
  auto parent = store_->find_call("parent");
  ASSERT_TRUE(parent.is_ok() && parent->has_value()) << parent.status().message();
  EXPECT_TRUE((*parent)->input == std::string(kMiB, '\0'));
  ASSERT_TRUE((*parent)->output.has_value());
  EXPECT_TRUE(*(*parent)->output == output);
}

// A reference whose blob is gone (a store damaged by hand, a bug) makes the
// read fail with the digest named: never an empty input, no output or no
// state, which would run the call on the wrong value.
TEST_P(BlobStoreTest, AReferenceWhoseBlobIsGoneIsAnErrorNotAnEmptyValue) {
  std::string id = dispatch(call("parent", large_value(kMiB, 15)));
  std::string done = dispatch(call("f", "in"));
  ASSERT_EQ(claim().size(), 2u);
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.suspend(id, 1, journal_with(large_value(kMiB, 16), clock_.now()), {}, {});
  }));
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.finish(done, 1, CallEnd{true, 1, large_value(kMiB, 17), {}}, {});
  }));
  ASSERT_EQ(blob_count(), 3);
  exec("DELETE FROM blobs");

  for (const std::string& each : {id, done}) {
    auto found = store_->find_call(each);
    ASSERT_FALSE(found.is_ok()) << "read " << each << " without its value";
    EXPECT_NE(found.status().message().find("missing from the store: no blob with SHA-256 "),
              std::string::npos)
        << found.status().message();
  }
  auto state = store_->coroutine_state(id);
  ASSERT_FALSE(state.is_ok()) << "read a state without its value";
  EXPECT_NE(state.status().message().find("no blob with SHA-256"), std::string::npos)
      << state.status().message();
  std::vector<ClaimedCall> claimed;
  Status claiming = store_->calls([&](CallTransaction& tx) -> Status {
    ASSIGN_OR_RETURN(claimed,
                     testing::claim_due(tx, "server-a", clock_.now() + kMicrosPerSecond, 10));
    return Status::ok();
  });
  ASSERT_FALSE(claiming.is_ok()) << "claimed a call without its input and state";
  EXPECT_NE(claiming.message().find("no blob with SHA-256"), std::string::npos)
      << claiming.message();
}

// Such a read fails with a code of its own on each backend, Code::kDataLoss,
// which the scheduler tests to hold the calls that need the value: a message
// can be reworded, and the message alone does not make an error data loss.
TEST_P(BlobStoreTest, AReadOfAGoneBlobFailsWithTheDataLossCode) {
  std::string id = dispatch(call("f", large_value(kMiB, 18)));
  exec("DELETE FROM blobs");

  auto found = store_->find_call(id);
  ASSERT_FALSE(found.is_ok()) << "read a call without its input";
  EXPECT_EQ(code_name(found.status().code()), "data_loss") << found.status().message();
  EXPECT_TRUE(blobs::is_missing(found.status()));
  Status claiming = store_->calls([&](CallTransaction& tx) -> Status {
    return testing::claim_due(tx, "server-a", clock_.now() + kMicrosPerSecond, 10).status();
  });
  EXPECT_EQ(code_name(claiming.code()), "data_loss") << claiming.message();
  EXPECT_FALSE(blobs::is_missing(internal_error(std::string(blobs::kMissingMessage))));
}

}  // namespace
}  // namespace ratchet
