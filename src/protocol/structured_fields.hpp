// RFC 8941 Structured Field Values for HTTP: the subset that request signing needs
// (Dictionaries of Items and Inner Lists, with Parameters), parsed and serialized.
//
// The parser is meant for hostile input (it reads headers from the network):
// - it never throws and never reads out of bounds; a malformed field is a Status with a
//   one-line reason naming the offset;
// - its work is bounded: fields longer than `Limits::max_field_bytes`, and dictionaries,
//   inner lists or parameter sets larger than their limits, are rejected.
// Serialization is canonical (RFC 8941 section 4.1), which is what RFC 9421 signs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/status.hpp"

namespace ratchet::protocol::sf {

struct Token {
  std::string value;
  bool operator==(const Token&) const = default;
};
struct ByteSequence {
  std::string bytes;
  bool operator==(const ByteSequence&) const = default;
};
// A decimal, kept as its canonical text ("-1.5"): signing only needs to re-serialize it.
struct Decimal {
  std::string text;
  bool operator==(const Decimal&) const = default;
};

// Integer, Decimal, String, Token, Byte Sequence or Boolean.
using BareItem = std::variant<std::int64_t, Decimal, std::string, Token, ByteSequence, bool>;

// Ordered; keys are unique (a repeated key overwrites the value in place, per RFC 8941).
using Parameters = std::vector<std::pair<std::string, BareItem>>;

struct Item {
  BareItem value;
  Parameters params;
};

struct InnerList {
  std::vector<Item> items;
  Parameters params;
};

using Member = std::variant<Item, InnerList>;

// Ordered; keys are unique (as Parameters).
using Dictionary = std::vector<std::pair<std::string, Member>>;

struct Limits {
  std::size_t max_field_bytes = 16 * 1024;
  std::size_t max_members = 64;
  std::size_t max_inner_list_items = 64;
  std::size_t max_parameters = 32;
};

// Parses a Dictionary field value (e.g. Signature-Input, Signature, Content-Digest).
// An empty (or all-space) value is an empty Dictionary.
Result<Dictionary> parse_dictionary(std::string_view field_value, const Limits& limits = {});

std::string serialize_bare_item(const BareItem& item);
std::string serialize_parameters(const Parameters& params);
std::string serialize_item(const Item& item);
std::string serialize_inner_list(const InnerList& list);

// The value of `key`, or nullptr.
const BareItem* find_parameter(const Parameters& params, std::string_view key);
const Member* find_member(const Dictionary& dictionary, std::string_view key);

}  // namespace ratchet::protocol::sf
