#include "http/message.hpp"

#include <algorithm>

namespace ratchet::http {
namespace {

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

std::optional<std::string_view> Headers::get(std::string_view name) const {
  for (const Header& field : fields_) {
    if (iequals(field.name, name)) return std::string_view(field.value);
  }
  return std::nullopt;
}

void Headers::add(std::string name, std::string value) {
  fields_.push_back(Header{std::move(name), std::move(value)});
}

void Headers::set(std::string name, std::string value) {
  auto first = std::find_if(fields_.begin(), fields_.end(),
                            [&](const Header& field) { return iequals(field.name, name); });
  if (first == fields_.end()) {
    add(std::move(name), std::move(value));
    return;
  }
  first->value = std::move(value);
  auto rest = std::remove_if(first + 1, fields_.end(),
                             [&](const Header& field) { return iequals(field.name, name); });
  fields_.erase(rest, fields_.end());
}

std::size_t Headers::remove(std::string_view name) {
  auto kept = std::remove_if(fields_.begin(), fields_.end(),
                             [&](const Header& field) { return iequals(field.name, name); });
  std::size_t removed = static_cast<std::size_t>(fields_.end() - kept);
  fields_.erase(kept, fields_.end());
  return removed;
}

std::string_view Request::bearer_key() const {
  constexpr std::string_view kBearer = "Bearer ";
  auto value = header("Authorization");
  if (!value || value->size() <= kBearer.size() ||
      !iequals(value->substr(0, kBearer.size()), kBearer)) {
    return {};
  }
  return value->substr(kBearer.size());
}

std::string_view Request::path() const {
  std::string_view t = target;
  return t.substr(0, t.find('?'));
}

std::string_view Request::query() const {
  std::string_view t = target;
  std::size_t mark = t.find('?');
  return mark == std::string_view::npos ? std::string_view() : t.substr(mark + 1);
}

Response Response::with_body(int status, std::string content_type, std::string body) {
  Response response;
  response.status = status;
  response.headers.add("Content-Type", std::move(content_type));
  response.body = std::move(body);
  return response;
}

}  // namespace ratchet::http
