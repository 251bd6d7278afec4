// Identifiers: random version-4 UUIDs for jobs and calls.
#pragma once

#include <string>

namespace ratchet {

// A random RFC 4122 version-4 UUID in lower-case canonical form, from the
// kernel's random source.
std::string new_uuid();

}  // namespace ratchet
