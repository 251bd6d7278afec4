// list_open_bench [--quick]: ListOpen's pages (Store::open_coroutines, what
// `--ratchet-check` reads) over 100,000 open coroutines on PostgreSQL
// (RATCHET_TEST_PG's server, a database of its own there).
//
// Times a page of 1,000 (the server's limit) at the start and in the middle of
// the order, and the walk through every page, with the index that serves the
// page's byte order (coroutine_states_in_byte_order), then, in the same run,
// without it (the baseline: the store before that migration). --quick uses
// 10,000 coroutines.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "storage/pg_testing.hpp"
#include "storage/store.hpp"

namespace {

using namespace ratchet;
using Steady = std::chrono::steady_clock;

constexpr int kPage = 1000;

double ms_since(Steady::time_point start) {
  return std::chrono::duration<double, std::milli>(Steady::now() - start).count();
}

// Open coroutines of one function, their ids in an order other than byte order.
std::string fill_sql(long total) {
  std::string n = std::to_string(total);
  return "INSERT INTO runs (id, kind, status, started_at, updated_at, function, endpoint, "
         "input, root_id, phase, poll_deadline, lease_epoch) SELECT 'call-' || md5(i::text), "
         "'call', 'RUNNING', i, i, 'order', 'http://127.0.0.1:1', ''::bytea, 'call-' || "
         "md5(i::text), 'WAITING', 9000000000000000000, 0 FROM generate_series(1, " +
         n +
         ") AS i; INSERT INTO coroutine_states (call_id, state) SELECT id, "
         "'\\x0a0b'::bytea FROM runs; ANALYZE;";
}

double median(std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

// The median time of a page of kPage after `after`, over `runs` runs.
double page_ms(Store& store, const std::string& after, int runs) {
  std::vector<double> samples;
  for (int i = 0; i < runs; ++i) {
    auto start = Steady::now();
    auto page = store.open_coroutines({"order"}, "", after, kPage);
    samples.push_back(ms_since(start));
    if (!page.is_ok() || page->size() != static_cast<std::size_t>(kPage)) {
      std::fprintf(stderr, "a page failed: %s\n", page.status().message().c_str());
      std::exit(1);
    }
  }
  return median(samples);
}

// Every page, to the end: what one `--ratchet-check` reads. The id in the middle.
double walk_ms(Store& store, long total, std::string* middle) {
  auto start = Steady::now();
  std::string after;
  long seen = 0;
  while (true) {
    auto page = store.open_coroutines({"order"}, "", after, kPage);
    if (!page.is_ok()) {
      std::fprintf(stderr, "a page failed: %s\n", page.status().message().c_str());
      std::exit(1);
    }
    if (page->empty()) break;
    seen += static_cast<long>(page->size());
    after = page->back().id;
    if (seen == total / 2) *middle = after;
  }
  if (seen != total) {
    std::fprintf(stderr, "the walk saw %ld coroutines of %ld\n", seen, total);
    std::exit(1);
  }
  return ms_since(start);
}

void measure(const std::string& url, const char* label, long total) {
  FakeClock clock;
  auto store = open_store(url, clock, {});
  if (!store.is_ok()) {
    std::fprintf(stderr, "%s\n", store.status().message().c_str());
    std::exit(1);
  }
  std::string middle;
  double walk = walk_ms(**store, total, &middle);
  double first = page_ms(**store, "", 9);
  double mid = page_ms(**store, middle, 9);
  std::printf("%-34s first page %8.1f ms   middle page %8.1f ms   all %ld pages %9.1f ms\n", label,
              first, mid, total / kPage, walk);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  const long total = quick ? 10000 : 100000;
  if (!ratchet::testing::test_pg_url()) {
    std::fprintf(stderr, "list_open_bench: %s\n", ratchet::testing::missing_pg_message().c_str());
    return 2;
  }
  auto db = ratchet::testing::PgTestDatabase::create();
  if (!db.is_ok()) {
    std::fprintf(stderr, "%s\n", db.status().message().c_str());
    return 1;
  }
  FakeClock clock;
  if (!open_store(db->url(), clock, {}).is_ok() || !db->exec(fill_sql(total)).is_ok()) {
    std::fprintf(stderr, "cannot fill the store\n");
    return 1;
  }
  std::printf("ListOpen over %ld open coroutines, pages of %d (PostgreSQL)\n", total, kPage);
  measure(db->url(), "with coroutine_states_in_byte_order", total);
  if (!db->exec("DROP INDEX coroutine_states_in_byte_order; ANALYZE").is_ok()) return 1;
  measure(db->url(), "without it (baseline: before)", total);
  return 0;
}
