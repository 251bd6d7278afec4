#include "server/metrics.hpp"

#include <cstdio>
#include <initializer_list>
#include <utility>

namespace ratchet::server {
namespace {

// A label value, escaped as the format requires (backslash, quote, newline).
std::string escaped(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.17g", value);
  return buffer;
}

class Writer {
 public:
  void family(const char* name, const char* type, const char* help) {
    text_ += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  }
  void sample(const std::string& name,
              std::initializer_list<std::pair<const char*, std::string>> labels, double value) {
    text_ += name;
    if (labels.size() > 0) {
      text_ += '{';
      bool first = true;
      for (const auto& [key, label] : labels) {
        if (!first) text_ += ',';
        first = false;
        text_ += std::string(key) + "=\"" + escaped(label) + '"';
      }
      text_ += '}';
    }
    text_ += ' ' + number(value) + '\n';
  }
  void histogram(const char* name, const char* help, const engine::Histogram& h) {
    family(name, "histogram", help);
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < h.counts.size(); ++i) {
      cumulative += h.counts[i];
      std::string le = i < h.bounds.size() ? number(h.bounds[i]) : "+Inf";
      sample(std::string(name) + "_bucket", {{"le", le}}, static_cast<double>(cumulative));
    }
    sample(std::string(name) + "_sum", {}, h.sum);
    sample(std::string(name) + "_count", {}, static_cast<double>(h.count));
  }
  std::string take() { return std::move(text_); }

 private:
  std::string text_;
};

}  // namespace

std::string prometheus_text(const engine::SchedulerFigures& f) {
  Writer w;
  w.family("ratchet_calls_dispatched_total", "counter", "Calls recorded by Dispatch.");
  w.sample("ratchet_calls_dispatched_total", {}, static_cast<double>(f.calls_dispatched));
  w.family("ratchet_calls_ended_total", "counter",
           "Calls that ended after an attempt, by function and status.");
  for (const auto& [key, n] : f.calls_ended) {
    w.sample("ratchet_calls_ended_total", {{"function", key.first}, {"status", key.second}},
             static_cast<double>(n));
  }
  w.family("ratchet_calls_cancelled_total", "counter", "Calls cancelled (descendants included).");
  w.sample("ratchet_calls_cancelled_total", {}, static_cast<double>(f.cancelled));
  w.family("ratchet_calls_expired_total", "counter", "Calls that failed TIMEOUT at expiration.");
  w.sample("ratchet_calls_expired_total", {}, static_cast<double>(f.expired));
  w.family("ratchet_attempts_total", "counter", "Attempts whose reply was recorded.");
  w.sample("ratchet_attempts_total", {}, static_cast<double>(f.attempts));
  w.family("ratchet_retries_total", "counter", "Attempts that will be tried again.");
  w.sample("ratchet_retries_total", {}, static_cast<double>(f.retries));
  w.family("ratchet_queue_depth", "gauge", "Ready calls due now, by function.");
  for (const auto& [function, n] : f.queue_depth) {
    w.sample("ratchet_queue_depth", {{"function", function}}, static_cast<double>(n));
  }
  w.family("ratchet_calls_waiting", "gauge",
           "Suspended coroutines (sleeping or awaiting children).");
  w.sample("ratchet_calls_waiting", {}, static_cast<double>(f.waiting));
  w.family("ratchet_in_flight", "gauge", "Calls sent and not yet answered.");
  w.sample("ratchet_in_flight", {}, f.in_flight);
  w.family("ratchet_max_in_flight", "gauge", "The server's limit of calls in flight.");
  w.sample("ratchet_max_in_flight", {}, f.max_in_flight);
  w.family("ratchet_endpoint_in_flight", "gauge", "Calls in flight, by endpoint.");
  for (const auto& e : f.endpoints) {
    w.sample("ratchet_endpoint_in_flight", {{"endpoint", e.endpoint}}, e.in_flight);
  }
  w.family("ratchet_endpoint_limit", "gauge", "An endpoint's adaptive in-flight limit (AIMD).");
  for (const auto& e : f.endpoints) {
    w.sample("ratchet_endpoint_limit", {{"endpoint", e.endpoint}}, e.limit);
  }
  w.family("ratchet_store_failing", "gauge", "1 while the store cannot commit.");
  w.sample("ratchet_store_failing", {}, f.store_failing ? 1 : 0);
  w.histogram("ratchet_commit_seconds", "How long each turn's transaction took to commit.",
              f.commit_seconds);
  w.histogram("ratchet_turn_size", "Transitions per turn (dispatches, replies, claims).",
              f.turn_size);
  return w.take();
}

}  // namespace ratchet::server
