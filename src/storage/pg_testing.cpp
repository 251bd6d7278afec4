#include "storage/pg_testing.hpp"

#include <cstdlib>

#include "common/ids.hpp"
#include "storage/pg_db.hpp"

namespace ratchet::testing {
namespace {

// The URL with its database (the path) replaced.
std::string with_database(const std::string& url, const std::string& name) {
  auto query = url.find('?');
  std::string base = url.substr(0, query);
  std::string rest = query == std::string::npos ? "" : url.substr(query);
  auto authority = base.find("://");
  auto slash = base.find('/', authority == std::string::npos ? 0 : authority + 3);
  if (slash != std::string::npos) base.resize(slash);
  return base + "/" + name + rest;
}

Result<std::unique_ptr<pg::Connection>> connect(const std::string& url) {
  pg::ConnectOptions options;
  options.lock_timeout = 30 * kMicrosPerSecond;
  return pg::Connection::open(url, options);
}

}  // namespace

std::optional<std::string> test_pg_url() {
  const char* url = std::getenv("RATCHET_TEST_PG");
  if (!url || !*url) return std::nullopt;
  return std::string(url);
}

bool running_in_ci() {
  const char* ci = std::getenv("CI");
  return ci && *ci && std::string_view(ci) != "false" && std::string_view(ci) != "0";
}

std::string missing_pg_message() {
  return "RATCHET_TEST_PG is not set: this test needs a PostgreSQL server. scripts/test.sh "
         "starts one; by hand: scripts/pg-cluster.sh start DIR prints the URL to export";
}

Result<PgTestDatabase> PgTestDatabase::create() {
  auto admin = test_pg_url();
  if (!admin) return unavailable(missing_pg_message());
  std::string name = "ratchet_test_" + new_uuid().substr(0, 8);
  ASSIGN_OR_RETURN(auto connection, connect(*admin));
  RETURN_IF_ERROR(connection->exec("CREATE DATABASE " + name));
  return PgTestDatabase(*admin, name, with_database(*admin, name));
}

PgTestDatabase::PgTestDatabase(PgTestDatabase&& other) noexcept
    : admin_url_(std::move(other.admin_url_)),
      name_(std::move(other.name_)),
      url_(std::move(other.url_)) {
  other.name_.clear();
}

PgTestDatabase::~PgTestDatabase() {
  if (name_.empty()) return;
  auto connection = connect(admin_url_);
  if (connection.is_ok()) {
    (void)(*connection)->exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  }
}

Status PgTestDatabase::exec(const std::string& sql) const {
  ASSIGN_OR_RETURN(auto connection, connect(url_));
  return connection->exec(sql);
}

Result<long long> PgTestDatabase::number(const std::string& sql) const {
  ASSIGN_OR_RETURN(auto connection, connect(url_));
  ASSIGN_OR_RETURN(pg::Rows rows, connection->query(sql.c_str()));
  if (rows.empty()) return -1LL;
  return static_cast<long long>(rows[0].int64(0));
}

}  // namespace ratchet::testing
