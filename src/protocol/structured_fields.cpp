#include "protocol/structured_fields.hpp"

#include <string>

#include "protocol/base64.hpp"

namespace ratchet::protocol::sf {
namespace {

constexpr std::size_t kMaxIntegerDigits = 15;
constexpr std::size_t kMaxDecimalIntegerDigits = 12;
constexpr std::size_t kMaxDecimalFractionDigits = 3;

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_lcalpha(char c) { return c >= 'a' && c <= 'z'; }
bool is_alpha(char c) { return is_lcalpha(c) || (c >= 'A' && c <= 'Z'); }

bool is_key_char(char c) {
  return is_lcalpha(c) || is_digit(c) || c == '_' || c == '-' || c == '.' || c == '*';
}

// RFC 9110 tchar, plus ":" and "/" which RFC 8941 allows in tokens.
bool is_token_char(char c) {
  static constexpr std::string_view kSymbols = "!#$%&'*+-.^_`|~:/";
  return is_alpha(c) || is_digit(c) || kSymbols.find(c) != std::string_view::npos;
}

bool is_base64_char(char c) {
  return is_alpha(c) || is_digit(c) || c == '+' || c == '/' || c == '=';
}

template <typename Map, typename Value>
void insert_or_overwrite(Map& map, std::string key, Value value) {
  for (auto& entry : map) {
    if (entry.first == key) {
      entry.second = std::move(value);
      return;
    }
  }
  map.emplace_back(std::move(key), std::move(value));
}

// A recursive-descent parser over one field value. Every method checks bounds before
// reading; none throws.
class Parser {
 public:
  Parser(std::string_view input, const Limits& limits) : in_(input), limits_(limits) {}

  Result<Dictionary> dictionary() {
    skip_spaces();
    Dictionary dict;
    while (!at_end()) {
      ASSIGN_OR_RETURN(std::string key, parse_key());
      ASSIGN_OR_RETURN(Member member, parse_member_value());
      if (!find_member(dict, key) && dict.size() >= limits_.max_members) {
        return error("too many dictionary members");
      }
      insert_or_overwrite(dict, std::move(key), std::move(member));
      skip_ows();
      if (at_end()) break;
      if (peek() != ',') return error("expected ',' between dictionary members");
      ++pos_;
      skip_ows();
      if (at_end()) return error("trailing ',' after the last dictionary member");
    }
    return dict;
  }

 private:
  bool at_end() const { return pos_ >= in_.size(); }
  char peek() const { return at_end() ? '\0' : in_[pos_]; }
  void skip_spaces() {
    while (peek() == ' ') ++pos_;
  }
  void skip_ows() {
    while (peek() == ' ' || peek() == '\t') ++pos_;
  }

  Status error(std::string_view what) const {
    return invalid_argument("malformed structured field: " + std::string(what) + " at offset " +
                            std::to_string(pos_));
  }

  Result<Member> parse_member_value() {
    if (peek() != '=') {
      // A bare key is the Boolean true, with parameters.
      ASSIGN_OR_RETURN(Parameters params, parse_parameters());
      return Member(Item{true, std::move(params)});
    }
    ++pos_;
    if (peek() == '(') {
      ASSIGN_OR_RETURN(InnerList list, parse_inner_list());
      return Member(std::move(list));
    }
    ASSIGN_OR_RETURN(Item item, parse_item());
    return Member(std::move(item));
  }

  Result<InnerList> parse_inner_list() {
    ++pos_;  // '('
    InnerList list;
    while (!at_end()) {
      skip_spaces();
      if (peek() == ')') {
        ++pos_;
        ASSIGN_OR_RETURN(list.params, parse_parameters());
        return list;
      }
      if (list.items.size() >= limits_.max_inner_list_items) {
        return error("too many inner list items");
      }
      ASSIGN_OR_RETURN(Item item, parse_item());
      list.items.push_back(std::move(item));
      if (peek() != ' ' && peek() != ')') return error("expected ' ' or ')' in inner list");
    }
    return error("unterminated inner list");
  }

  Result<Item> parse_item() {
    ASSIGN_OR_RETURN(BareItem value, parse_bare_item());
    ASSIGN_OR_RETURN(Parameters params, parse_parameters());
    return Item{std::move(value), std::move(params)};
  }

  Result<Parameters> parse_parameters() {
    Parameters params;
    while (peek() == ';') {
      ++pos_;
      skip_spaces();
      ASSIGN_OR_RETURN(std::string key, parse_key());
      BareItem value = true;
      if (peek() == '=') {
        ++pos_;
        ASSIGN_OR_RETURN(value, parse_bare_item());
      }
      if (!find_parameter(params, key) && params.size() >= limits_.max_parameters) {
        return error("too many parameters");
      }
      insert_or_overwrite(params, std::move(key), std::move(value));
    }
    return params;
  }

  Result<std::string> parse_key() {
    if (!is_lcalpha(peek()) && peek() != '*') return error("expected a key");
    const std::size_t start = pos_;
    while (!at_end() && is_key_char(in_[pos_])) ++pos_;
    return std::string(in_.substr(start, pos_ - start));
  }

  Result<BareItem> parse_bare_item() {
    const char c = peek();
    if (c == '-' || is_digit(c)) return parse_number();
    if (c == '"') return parse_string();
    if (c == '*' || is_alpha(c)) return parse_token();
    if (c == ':') return parse_byte_sequence();
    if (c == '?') return parse_boolean();
    return error("expected an item");
  }

  Result<BareItem> parse_number() {
    const bool negative = peek() == '-';
    if (negative) ++pos_;
    const std::size_t int_start = pos_;
    while (is_digit(peek())) ++pos_;
    const std::string_view int_digits = in_.substr(int_start, pos_ - int_start);
    if (int_digits.empty()) return error("expected a digit");
    if (peek() != '.') {
      if (int_digits.size() > kMaxIntegerDigits) return error("integer too long");
      std::int64_t value = 0;
      for (const char d : int_digits) value = value * 10 + (d - '0');
      return BareItem(negative ? -value : value);
    }
    if (int_digits.size() > kMaxDecimalIntegerDigits) return error("decimal too long");
    ++pos_;  // '.'
    const std::size_t frac_start = pos_;
    while (is_digit(peek())) ++pos_;
    std::string_view frac = in_.substr(frac_start, pos_ - frac_start);
    if (frac.empty() || frac.size() > kMaxDecimalFractionDigits) {
      return error("decimal needs 1 to 3 fractional digits");
    }
    return BareItem(Decimal{canonical_decimal(negative, int_digits, frac)});
  }

  static std::string canonical_decimal(bool negative, std::string_view int_digits,
                                       std::string_view frac) {
    while (int_digits.size() > 1 && int_digits.front() == '0') int_digits.remove_prefix(1);
    while (frac.size() > 1 && frac.back() == '0') frac.remove_suffix(1);
    return (negative ? "-" : "") + std::string(int_digits) + "." + std::string(frac);
  }

  Result<BareItem> parse_string() {
    ++pos_;  // '"'
    std::string out;
    while (!at_end()) {
      const char c = in_[pos_++];
      if (c == '"') return BareItem(std::move(out));
      if (c == '\\') {
        if (peek() != '"' && peek() != '\\') return error("bad escape in string");
        out += in_[pos_++];
        continue;
      }
      if (c < 0x20 || c > 0x7E) return error("invalid character in string");
      out += c;
    }
    return error("unterminated string");
  }

  Result<BareItem> parse_token() {
    const std::size_t start = pos_;
    ++pos_;  // first character, already checked
    while (!at_end() && is_token_char(in_[pos_])) ++pos_;
    return BareItem(Token{std::string(in_.substr(start, pos_ - start))});
  }

  Result<BareItem> parse_byte_sequence() {
    ++pos_;  // ':'
    const std::size_t start = pos_;
    while (!at_end() && is_base64_char(in_[pos_])) ++pos_;
    if (peek() != ':') return error("unterminated byte sequence");
    std::optional<std::string> bytes = base64_decode(in_.substr(start, pos_ - start));
    if (!bytes) return error("invalid base64 in byte sequence");
    ++pos_;  // ':'
    return BareItem(ByteSequence{std::move(*bytes)});
  }

  Result<BareItem> parse_boolean() {
    ++pos_;  // '?'
    const char c = peek();
    if (c != '0' && c != '1') return error("expected ?0 or ?1");
    ++pos_;
    return BareItem(c == '1');
  }

  std::string_view in_;
  const Limits& limits_;
  std::size_t pos_ = 0;
};

std::string serialize_string(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

struct BareItemSerializer {
  std::string operator()(std::int64_t value) const { return std::to_string(value); }
  std::string operator()(const Decimal& value) const { return value.text; }
  std::string operator()(const std::string& value) const { return serialize_string(value); }
  std::string operator()(const Token& value) const { return value.value; }
  std::string operator()(const ByteSequence& value) const {
    return ":" + base64_encode(value.bytes) + ":";
  }
  std::string operator()(bool value) const { return value ? "?1" : "?0"; }
};

}  // namespace

Result<Dictionary> parse_dictionary(std::string_view field_value, const Limits& limits) {
  if (field_value.size() > limits.max_field_bytes) {
    return invalid_argument("malformed structured field: longer than " +
                            std::to_string(limits.max_field_bytes) + " bytes");
  }
  return Parser(field_value, limits).dictionary();
}

std::string serialize_bare_item(const BareItem& item) {
  return std::visit(BareItemSerializer{}, item);
}

std::string serialize_parameters(const Parameters& params) {
  std::string out;
  for (const auto& [key, value] : params) {
    out += ';';
    out += key;
    const bool* flag = std::get_if<bool>(&value);
    if (flag && *flag) continue;  // a true Boolean parameter is written as its bare key
    out += '=';
    out += serialize_bare_item(value);
  }
  return out;
}

std::string serialize_item(const Item& item) {
  return serialize_bare_item(item.value) + serialize_parameters(item.params);
}

std::string serialize_inner_list(const InnerList& list) {
  std::string out = "(";
  for (std::size_t i = 0; i < list.items.size(); ++i) {
    if (i > 0) out += ' ';
    out += serialize_item(list.items[i]);
  }
  out += ')';
  out += serialize_parameters(list.params);
  return out;
}

const BareItem* find_parameter(const Parameters& params, std::string_view key) {
  for (const auto& [name, value] : params) {
    if (name == key) return &value;
  }
  return nullptr;
}

const Member* find_member(const Dictionary& dictionary, std::string_view key) {
  for (const auto& [name, value] : dictionary) {
    if (name == key) return &value;
  }
  return nullptr;
}

}  // namespace ratchet::protocol::sf
