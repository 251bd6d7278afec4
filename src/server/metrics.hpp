// The scheduler's figures (engine/figures.hpp) in the Prometheus text
// exposition format (version 0.0.4), served at GET /metrics: see
// docs/server.md for the names and whether a key is needed.
#pragma once

#include <string>

#include "engine/figures.hpp"

namespace ratchet::server {

inline constexpr std::string_view kMetricsPath = "/metrics";
inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4";

std::string prometheus_text(const engine::SchedulerFigures& figures);

}  // namespace ratchet::server
