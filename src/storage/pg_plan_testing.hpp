// For tests that check a query's plan on PostgreSQL: the generic plan (the one
// a prepared statement settles on) with full scans (and sorts, unless allowed)
// made the planner's last resort, so that if an index can serve the query, in
// order, the plan uses it.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "storage/pg_db.hpp"

namespace ratchet::testing {

// EXPLAIN of `sql` prepared and run with `arguments` (SQL literals, comma-
// separated), one line per plan node; "" (and a test failure) on an error.
inline std::string postgres_generic_plan(pg::Connection& db, const std::string& sql,
                                         const std::string& arguments, bool sorts_allowed = false) {
  Status prepared =
      db.exec(std::string("SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off; "
                          "SET enable_bitmapscan = off; ") +
              (sorts_allowed ? "SET enable_sort = on; " : "SET enable_sort = off; ") +
              "DEALLOCATE ALL; PREPARE planned AS " + sql);
  EXPECT_TRUE(prepared.is_ok()) << prepared.message();
  if (!prepared.is_ok()) return "";
  auto rows = db.query(("EXPLAIN EXECUTE planned(" + arguments + ")").c_str());
  EXPECT_TRUE(rows.is_ok()) << rows.status().message();
  std::string steps;
  for (int i = 0; rows.is_ok() && i < rows->size(); ++i) steps += (*rows)[i].text(0) + "\n";
  return steps;
}

}  // namespace ratchet::testing
