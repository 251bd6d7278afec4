// The dashboard's page, compiled into the binary at build time from
// src/dashboard/assets/ (cmake/EmbedAssets.cmake writes assets.cpp).
#pragma once

#include <span>
#include <string_view>

namespace ratchet::dashboard {

struct Asset {
  std::string_view name;  // the file name under assets/, e.g. "app.js"
  std::string_view content_type;
  std::string_view body;
};

std::span<const Asset> assets();

}  // namespace ratchet::dashboard
