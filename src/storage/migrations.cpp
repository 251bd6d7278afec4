#include "storage/migrations.hpp"

#include <string_view>
#include <unordered_set>

namespace ratchet {
namespace {

struct Plan {
  std::vector<std::string> to_record;  // applied, not yet recorded by name
  std::vector<const Migration*> to_apply;
  std::size_t count = 0;  // the migrations the store has once done
  bool complete() const { return to_record.empty() && to_apply.empty(); }
};

Status written_by_newer(const std::string& store, const std::string& what) {
  return failed_precondition(store + " " + what + ": a newer ratchet wrote it; upgrade ratchet");
}

// A store from before names has the first `version` migrations of the list.
Status add_numbered(const RecordedMigrations& recorded, const MigrationList& list,
                    const std::string& store, Plan& plan) {
  if (recorded.version < 0 || static_cast<std::size_t>(recorded.version) > list.numbered) {
    return written_by_newer(store, "has schema version " + std::to_string(recorded.version) +
                                       ", newer than this ratchet understands (" +
                                       std::to_string(list.numbered) + ")");
  }
  for (long long i = 0; i < recorded.version; ++i) plan.to_record.push_back(list.steps[i].name);
  return Status::ok();
}

Result<Plan> plan_for(const RecordedMigrations& recorded, const MigrationList& list,
                      const std::string& store) {
  Plan plan;
  if (!recorded.has_names) RETURN_IF_ERROR(add_numbered(recorded, list, store, plan));
  const std::vector<std::string>& have = recorded.has_names ? recorded.names : plan.to_record;
  std::unordered_set<std::string_view> applied(have.begin(), have.end());
  std::unordered_set<std::string_view> known;
  for (const Migration& step : list.steps) {
    known.insert(step.name);
    if (!applied.contains(step.name)) plan.to_apply.push_back(&step);
  }
  for (const std::string& name : have) {
    if (!known.contains(name)) {
      return written_by_newer(
          store, "has the migration '" + name + "' applied, which this ratchet does not know");
    }
  }
  plan.count = applied.size() + plan.to_apply.size();
  return plan;
}

}  // namespace

Result<bool> migrations_complete(MigrationTarget& target, const MigrationList& list) {
  ASSIGN_OR_RETURN(RecordedMigrations recorded, target.recorded());
  ASSIGN_OR_RETURN(Plan plan, plan_for(recorded, list, target.store()));
  return plan.complete();
}

Status apply_migrations(MigrationTarget& target, const MigrationList& list) {
  return target.transaction([&]() -> Status {
    ASSIGN_OR_RETURN(RecordedMigrations recorded, target.recorded());
    ASSIGN_OR_RETURN(Plan plan, plan_for(recorded, list, target.store()));
    if (plan.complete()) return Status::ok();  // another process did it
    for (const Migration* step : plan.to_apply) {
      RETURN_IF_ERROR(
          target.run(*step, "upgrading its schema (migration " + std::string(step->name) + ")"));
      plan.to_record.push_back(step->name);
    }
    return target.record(plan.to_record, plan.count);
  });
}

}  // namespace ratchet
