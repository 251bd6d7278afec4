#include "storage/store.hpp"

namespace ratchet {

bool is_postgres_location(std::string_view location) {
  return location.starts_with("postgres://") || location.starts_with("postgresql://");
}

std::string display_location(std::string_view location) {
  // scheme://user:password@host/...: the password is what lies between the
  // user's ':' and the '@' of the authority.
  auto scheme_end = location.find("://");
  if (scheme_end == std::string_view::npos) return std::string(location);
  auto authority = location.substr(scheme_end + 3);
  auto at = authority.find('@');
  auto slash = authority.find('/');
  if (at == std::string_view::npos || (slash != std::string_view::npos && slash < at)) {
    return std::string(location);
  }
  auto colon = authority.find(':');
  if (colon == std::string_view::npos || colon > at) return std::string(location);
  return std::string(location.substr(0, scheme_end + 3 + colon)) + ":***" +
         std::string(authority.substr(at));
}

}  // namespace ratchet
