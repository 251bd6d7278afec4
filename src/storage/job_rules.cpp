#include "storage/job_rules.hpp"

#include "common/byte_text.hpp"
#include "storage/records.hpp"

namespace ratchet::job_rules {
namespace {

// The key's live job, after recording LOST a live-looking one that is not.
Result<std::optional<JobRecord>> live_job(JobRows& rows, const std::string& run_key,
                                          const Store::LivenessCheck& is_live) {
  ASSIGN_OR_RETURN(auto current, rows.live_job_of_key(run_key));
  if (!current) return current;
  std::string reason;
  if (is_live(*current, &reason)) return current;
  ASSIGN_OR_RETURN(bool lost, rows.mark_job_lost(current->id, current->status, reason));
  (void)lost;
  return std::optional<JobRecord>();
}

// Records `request`'s job as the next of its key after `previous`.
Result<JobRecord> insert_next(JobRows& rows, const JobRequest& request,
                              const std::optional<JobRecord>& previous, bool override_used) {
  JobRecord job = records::new_job(request, rows.new_id(), rows.now());
  job.attempt_no = previous ? previous->attempt_no + 1 : 1;
  if (!job.rerun_of_job_id && previous) job.rerun_of_job_id = previous->id;
  job.strict_override_used = override_used;
  ASSIGN_OR_RETURN(int inserted, rows.insert_job(job, /*ignore_existing=*/false));
  (void)inserted;
  return job;
}

// The reason of the key's unlock, used up, if it had one that has not lapsed.
Result<std::optional<std::optional<std::string>>> use_unlock(JobRows& rows,
                                                             const std::string& run_key) {
  using Used = std::optional<std::optional<std::string>>;
  ASSIGN_OR_RETURN(auto taken, rows.take_unlock(run_key));
  // A lapsed unlock is deleted all the same: it will never be good again.
  if (!taken || (taken->expires_at && *taken->expires_at <= rows.now())) return Used();
  return Used(std::move(taken->reason));
}

}  // namespace

Result<StartedJob> start(JobRows& rows, const JobRequest& request,
                         const Store::LivenessCheck& is_live) {
  StartedJob started;
  ASSIGN_OR_RETURN(auto live, live_job(rows, request.run_key, is_live));
  if (live) {
    started.job = std::move(*live);
    started.existing = true;
    started.accepted = !request.strict;
    return started;
  }
  ASSIGN_OR_RETURN(auto previous, rows.newest_job_for_key(request.run_key));
  if (!request.strict) {
    ASSIGN_OR_RETURN(started.job, insert_next(rows, request, previous, false));
    return started;
  }
  ASSIGN_OR_RETURN(auto unlock, use_unlock(rows, request.run_key));
  // A key whose jobs were all cleaned runs anyway; an unlock left from before
  // is used up by it rather than kept for a later start.
  if (!previous) {
    ASSIGN_OR_RETURN(started.job, insert_next(rows, request, previous, false));
    return started;
  }
  if (!unlock) {
    started.job = std::move(*previous);
    started.existing = true;
    started.accepted = false;
    return started;
  }
  JobRequest unlocked = request;
  unlocked.rerun_reason = std::move(*unlock);
  ASSIGN_OR_RETURN(started.job, insert_next(rows, unlocked, previous, /*override_used=*/true));
  return started;
}

Result<std::optional<JobRecord>> retry(JobRows& rows, const std::string& id,
                                       const JobOutcome& outcome, const JobRequest& next) {
  ASSIGN_OR_RETURN(auto failed, rows.find_job(id));
  ASSIGN_OR_RETURN(bool finished, rows.finish_job(id, outcome));
  if (!finished || !failed) return std::optional<JobRecord>();
  JobRequest attempt = next;
  attempt.trigger = JobTrigger::kRetry;
  attempt.rerun_of_job_id = id;
  ASSIGN_OR_RETURN(JobRecord job, insert_next(rows, attempt, failed, false));
  return std::optional<JobRecord>(std::move(job));
}

Result<KeyUnlock> unlock(JobRows& rows, const std::string& run_key,
                         const std::optional<std::string>& reason, std::optional<Micros> ttl,
                         const Store::LivenessCheck& is_live) {
  KeyUnlock unlock{run_key, reason, rows.now(), std::nullopt, {}};
  if (ttl) unlock.expires_at = unlock.created_at + *ttl;
  ASSIGN_OR_RETURN(auto live, live_job(rows, run_key, is_live));
  if (live) {
    return failed_precondition("Cannot unlock active job " + live->id + " (it is " +
                               std::string(status_name(live->status)) +
                               "); wait for it or cancel it first");
  }
  ASSIGN_OR_RETURN(auto newest, rows.newest_job_for_key(run_key));
  if (!newest) return not_found("there is no job to unlock");
  unlock.newest = std::move(*newest);
  RETURN_IF_ERROR(rows.put_unlock(unlock));
  return unlock;
}

// Each job follows its key's newest job in the store, as a new job would, so
// that a key's numbers never repeat: an import run again numbers what
// orchesjob ran since after what it imported before. Ratchet's own jobs of a
// key are newer than its orchesjob history (a key switches over once): the
// history would become the key's newest job, so such a key refuses the import.
Result<int> import(JobRows& rows, const std::vector<JobRecord>& jobs) {
  int inserted = 0;
  for (JobRecord job : jobs) {
    ASSIGN_OR_RETURN(auto newest, rows.newest_job_for_key(job.run_key));
    if (newest && newest->trigger != JobTrigger::kImport) {
      return failed_precondition(
          "run key '" + bytes_to_text(job.run_key) +
          "' already has jobs Ratchet ran (the newest: " + newest->id +
          "), and orchesjob's history of a key is imported before Ratchet runs it; " +
          "nothing was imported (import from a copy of orchesjob.db without that key's rows)");
    }
    job.attempt_no = newest ? newest->attempt_no + 1 : 1;
    job.rerun_of_job_id = newest ? std::optional<std::string>(newest->id) : std::nullopt;
    ASSIGN_OR_RETURN(int added, rows.insert_job(job, /*ignore_existing=*/true));
    inserted += added;
  }
  return inserted;
}

std::optional<std::string> boot_id_of(const JobRecord& job) {
  if (job.process) return job.process->boot_id;
  if (job.supervisor) return job.supervisor->boot_id;
  return std::nullopt;
}

}  // namespace ratchet::job_rules
