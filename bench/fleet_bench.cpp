// The fleet's figures: calls per second through 1, 2 and 3 servers sharing one
// PostgreSQL database, beside one server on a durable SQLite file (the
// baseline, same machine, same run); PostgreSQL statements and transactions per
// completed call (from pg_stat_statements); and the statements an idle fleet
// costs per second. The servers run in this process, each with its own
// connections, scheduler and I/O thread; the endpoint echoes. It prints
// figures; it asserts nothing.
//
// usage: fleet_bench POSTGRES_URL [--quick]
//   POSTGRES_URL: a server started with pg_stat_statements preloaded (as
//   scripts/pg-cluster.sh does); each run gets a database of its own on it.
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.hpp"
#include "common/ids.hpp"
#include "server/server.hpp"
#include "storage/pg_db.hpp"

namespace {

using namespace ratchet;
using namespace ratchet::bench;

struct Figures {
  double calls_per_second = 0;
  double statements_per_call = 0;
  double transactions_per_call = 0;
  double round_trips_per_call = 0;
};

std::unique_ptr<pg::Connection> connect(const std::string& url) {
  auto connection = pg::Connection::open(url, pg::ConnectOptions{});
  if (!connection.is_ok()) {
    std::fprintf(stderr, "%s\n", connection.status().message().c_str());
    std::exit(1);
  }
  return std::move(connection).value();
}

long long number(pg::Connection& db, const char* sql, const pg::Params& params = {}) {
  auto rows = db.query(sql, params);
  if (!rows.is_ok() || rows->empty()) {
    std::fprintf(stderr, "%s: %s\n", sql, rows.status().message().c_str());
    std::exit(1);
  }
  return (*rows)[0].int64(0);
}

// The URL of database `name` on the server of `url`.
std::string with_database(const std::string& url, const std::string& name) {
  auto slash = url.rfind('/');
  return url.substr(0, slash) + "/" + name;
}

// Statements the bench database ran, by kind, from pg_stat_statements (its
// own counting queries excluded: they carry the comment "bench").
struct Statements {
  long long all = 0;
  long long commits = 0;
  long long notifies = 0;
};

Statements statements(pg::Connection& admin, const std::string& database) {
  const char* sql =
      "SELECT coalesce(sum(calls), 0)::bigint, "
      "coalesce(sum(calls) FILTER (WHERE query ILIKE 'COMMIT%'), 0)::bigint, "
      "coalesce(sum(calls) FILTER (WHERE query ILIKE 'NOTIFY%'), 0)::bigint "
      "FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
      "WHERE d.datname = $1 AND query NOT LIKE '%bench%'";
  auto rows = admin.query(sql, pg::Params().add(database));
  if (!rows.is_ok() || rows->empty()) {
    std::fprintf(stderr, "pg_stat_statements: %s\n", rows.status().message().c_str());
    std::exit(1);
  }
  return {(*rows)[0].int64(0), (*rows)[0].int64(1), (*rows)[0].int64(2)};
}

struct Fleet {
  std::vector<std::unique_ptr<server::Server>> servers;
  std::vector<http::Url> apis;
};

Fleet start_fleet(const std::string& db, int count) {
  Fleet fleet;
  auto key = *protocol::SigningKey::generate();
  for (int i = 0; i < count; ++i) {
    server::ServerConfig config;
    config.port = 0;
    config.db_path = db;
    config.durable = true;
    config.api.api_keys = {"bench"};
    config.signing_key = key;
    auto server = server::Server::start(config);
    if (!server.is_ok()) {
      std::fprintf(stderr, "server: %s\n", server.status().message().c_str());
      std::exit(1);
    }
    fleet.apis.push_back(*http::parse_url("http://127.0.0.1:" + std::to_string((*server)->port())));
    fleet.servers.push_back(std::move(server).value());
  }
  return fleet;
}

// Dispatches `calls` echoes in batches of 100 over the fleet's servers in
// turn; the milliseconds until `done()` says they all succeeded.
double run_calls(Fleet& fleet, const std::string& endpoint_url, int calls,
                 const std::function<long long()>& done) {
  const int batch = 100;
  http::Client client;
  auto start = Steady::now();
  std::vector<std::thread> dispatchers;
  for (std::size_t s = 0; s < fleet.apis.size(); ++s) {
    dispatchers.emplace_back([&, s] {
      // Server s takes batches s, s + n, s + 2n, ...
      http::Client own;
      int n = static_cast<int>(fleet.apis.size());
      int batches = calls / batch;
      int mine = batches / n + (static_cast<int>(s) < batches % n ? 1 : 0);
      blast(own, fleet.apis[s], mine, 8, [&](int b) {
        return dispatch_batch(endpoint_url, b * n + static_cast<int>(s), batch);
      });
    });
  }
  for (auto& t : dispatchers) t.join();
  // Polled every 20 ms on both stores alike: the figures are seconds long.
  while (done() < calls) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  return ms_since(start);
}

Figures postgres_run(const std::string& admin_url, const std::string& endpoint_url, int servers,
                     int calls, double idle_seconds, double* idle_statements_per_second) {
  auto admin = connect(admin_url);
  std::string name = "ratchet_bench_" + new_uuid().substr(0, 8);
  (void)admin->exec("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
  if (Status s = admin->exec("CREATE DATABASE " + name); !s.is_ok()) {
    std::fprintf(stderr, "%s\n", s.message().c_str());
    std::exit(1);
  }
  std::string url = with_database(admin_url, name);
  Figures figures;
  {
    Fleet fleet = start_fleet(url, servers);
    auto reader = connect(url);
    (void)admin->exec("SELECT pg_stat_statements_reset()");
    Statements before = statements(*admin, name);
    double ms = run_calls(fleet, endpoint_url, calls, [&] {
      return number(*reader, "SELECT /* bench */ count(*) FROM runs WHERE status = 'SUCCEEDED'");
    });
    Statements after = statements(*admin, name);
    figures.calls_per_second = calls / (ms / 1000);
    figures.statements_per_call = double(after.all - before.all) / calls;
    figures.transactions_per_call = double(after.commits - before.commits) / calls;
    // A NOTIFY goes out in the same round trip as its COMMIT.
    figures.round_trips_per_call =
        double((after.all - before.all) - (after.notifies - before.notifies)) / calls;
    if (idle_statements_per_second) {
      Statements idle_start = statements(*admin, name);
      std::this_thread::sleep_for(std::chrono::duration<double>(idle_seconds));
      Statements idle_end = statements(*admin, name);
      *idle_statements_per_second = (idle_end.all - idle_start.all) / idle_seconds;
    }
    for (auto& s : fleet.servers) s->stop();
  }
  (void)admin->exec("DROP DATABASE " + name + " WITH (FORCE)");
  return figures;
}

double sqlite_run(const std::string& endpoint_url, int calls) {
  std::string dir = "/tmp/ratchet-fleet-bench-" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  double per_second = 0;
  {
    Fleet fleet = start_fleet(dir + "/ratchet.db", 1);
    sqlite3* reader = nullptr;
    sqlite3_open((dir + "/ratchet.db").c_str(), &reader);
    double ms = run_calls(fleet, endpoint_url, calls, [&] {
      sqlite3_stmt* count = nullptr;
      sqlite3_prepare_v2(reader, "SELECT count(*) FROM runs WHERE status = 'SUCCEEDED'", -1, &count,
                         nullptr);
      long long n = sqlite3_step(count) == SQLITE_ROW ? sqlite3_column_int64(count, 0) : 0;
      sqlite3_finalize(count);
      return n;
    });
    sqlite3_close(reader);
    per_second = calls / (ms / 1000);
    fleet.servers.front()->stop();
  }
  std::filesystem::remove_all(dir);
  return per_second;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]).rfind("postgres", 0) != 0) {
    std::fprintf(stderr, "usage: fleet_bench POSTGRES_URL [--quick]\n");
    return 2;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::string admin_url = argv[1];
  bool quick = argc > 2 && std::string(argv[2]) == "--quick";
  const int calls = quick ? 3000 : 10000;
  const double idle_seconds = quick ? 3 : 10;

  std::atomic<int> served{0};
  auto endpoint = start_endpoint(&served);
  std::string endpoint_url = "http://127.0.0.1:" + std::to_string(endpoint->port());

  double sqlite_per_second = sqlite_run(endpoint_url, calls);
  std::printf("%-44s %10s %12s %12s %12s\n", "store", "calls/s", "stmts/call", "round trips",
              "xacts/call");
  std::printf("%-44s %10.0f %12s %12s %12s\n", "SQLite, 1 server (baseline)", sqlite_per_second,
              "-", "-", "-");
  double idle = 0;
  for (int servers = 1; servers <= 3; ++servers) {
    Figures f = postgres_run(admin_url, endpoint_url, servers, calls, idle_seconds,
                             servers == 3 ? &idle : nullptr);
    std::printf("%-44s %10.0f %12.2f %12.2f %12.3f\n",
                ("PostgreSQL, " + std::to_string(servers) + " server(s)").c_str(),
                f.calls_per_second, f.statements_per_call, f.round_trips_per_call,
                f.transactions_per_call);
  }
  std::printf("idle: 3 servers ran %.1f statements/s together\n", idle);
  return 0;
}
