// Byte strings shown as UTF-8 text, losslessly, for values that are bytes to
// Ratchet but text to the people and programs reading its JSON (run keys).
//
// A byte that is not part of valid UTF-8 is shown as one of 128 code points
// of the supplementary private use area, U+10FF00 + (byte - 0x80); a valid
// code point of that range is itself shown byte by byte that way, so that
// text_to_bytes(bytes_to_text(b)) == b for every byte string b. The result is
// valid UTF-8, so it survives JSON parsers, jq and Python unchanged, and can
// be passed back on the command line. Valid UTF-8 without those code points
// (every key anyone types) is shown as it is. docs/jobs.md documents it.
#pragma once

#include <string>
#include <string_view>

namespace ratchet {

std::string bytes_to_text(std::string_view bytes);
// The inverse: code points U+10FF00..U+10FF7F become the bytes they stand for;
// everything else (invalid bytes included) is kept as it is.
std::string text_to_bytes(std::string_view text);
// True when `text` is valid UTF-8 (RFC 3629).
bool is_utf8(std::string_view text);
// Free text (an error quoting a command, a reason typed on the command line)
// for a store that keeps only UTF-8: `text` itself when it is UTF-8, else its
// byte text.
std::string utf8_or_byte_text(std::string_view text);

}  // namespace ratchet
