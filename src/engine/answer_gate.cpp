#include "engine/answer_gate.hpp"

#include <algorithm>

namespace ratchet::engine {

AnswerGate::Answer AnswerGate::answering(const std::vector<std::string>& ids) {
  Answer answer = next_++;
  answers_.emplace(answer, Open{ids, std::nullopt});
  for (const auto& id : ids) ++waiting_[id];
  return answer;
}

void AnswerGate::written(Answer answer, Micros at) { go_at(answer, at + grace_); }

void AnswerGate::read(Answer answer, Micros at) { go_at(answer, at); }

void AnswerGate::waited(const std::string& id, Micros at) {
  if (!holds(id)) return;
  for (const auto& [answer, open] : answers_) {
    if (std::find(open.ids.begin(), open.ids.end(), id) != open.ids.end()) go_at(answer, at);
  }
}

void AnswerGate::go_at(Answer answer, Micros at) {
  auto found = answers_.find(answer);
  if (found == answers_.end()) return;
  auto& go = found->second.go_at;
  if (go && *go <= at) return;
  go = at;
  due_.emplace(at, answer);
}

bool AnswerGate::hold(ClaimedCall call) {
  std::string id = call.call.id;
  return held_.insert_or_assign(std::move(id), std::move(call)).second;
}

// The answer's ids wait for it no more; a held call goes once no answer holds it.
void AnswerGate::close(Answer answer, std::vector<ClaimedCall>& ready) {
  auto found = answers_.find(answer);
  if (found == answers_.end()) return;
  for (const auto& id : found->second.ids) {
    auto waiting = waiting_.find(id);
    if (waiting == waiting_.end() || --waiting->second > 0) continue;
    waiting_.erase(waiting);
    auto held = held_.find(id);
    if (held == held_.end()) continue;  // not claimed yet: a later claim sends it
    ready.push_back(std::move(held->second));
    held_.erase(held);
  }
  answers_.erase(found);
}

std::vector<ClaimedCall> AnswerGate::release_due(Micros now) {
  std::vector<ClaimedCall> ready;
  while (!due_.empty() && due_.begin()->first <= now) {
    auto [at, answer] = *due_.begin();
    due_.erase(due_.begin());
    auto found = answers_.find(answer);
    if (found != answers_.end() && found->second.go_at == at) close(answer, ready);
  }
  return ready;
}

std::vector<ClaimedCall> AnswerGate::take_held() {
  std::vector<ClaimedCall> calls;
  for (auto& [id, call] : held_) calls.push_back(std::move(call));
  held_.clear();
  return calls;
}

std::optional<Micros> AnswerGate::next_due() const {
  if (due_.empty()) return std::nullopt;
  return due_.begin()->first;
}

}  // namespace ratchet::engine
