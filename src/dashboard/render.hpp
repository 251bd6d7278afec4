// How the dashboard shows what the store keeps as bytes: call inputs and
// outputs (serialized google.protobuf.Any), errors, a coroutine's state (the
// C++ SDK's journal, decoded step by step), and a job's environment (the values
// of variables whose names look secret are never sent). Pure: no I/O, and
// hostile bytes give a description, never an exception.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "storage/call.hpp"

namespace ratchet::dashboard {

// A value, by what it holds:
//   {"kind": "none"}                                    no bytes at all
//   {"kind": "json", "json": ...}                       google.protobuf.Value, wrappers, Empty...
//   {"kind": "text", "text": "..."}                     StringValue (or BytesValue of UTF-8)
//   {"kind": "python", "size": N, "summary": "Python object, N bytes"}   a pickle
//   {"kind": "message", "type": "acme.Order", "size": N}                another message
//   {"kind": "bytes", "size": N, "hex": "0a1b..."}      anything else (the first 64 bytes)
nlohmann::json render_value(std::string_view serialized_any);

// {"type": ..., "message": ..., "traceback": ..., "value": {"kind": "python", ...}}:
// the traceback and the pickled exception from the endpoint's Error bytes
// (CallError::encoded), when it sent them.
nlohmann::json render_error(const CallError& error);

// A suspended coroutine's state. The C++ SDK's journal (typed, member 6):
//   {"kind": "journal", "function": f, "input": value, "completed": n,
//    "steps": [{"step": 1, "function": g, "state": "ok"|"error"|"pending",
//               "output": value | "error": {...}, "completion": k}, ...]}
// any other typed state {"kind": "message", ...}; raw bytes (a Python
// coroutine, member 1) {"kind": "python", ...}.
nlohmann::json render_coroutine_state(int member, std::string_view state);

// True for names like API_KEY, DB_PASSWORD, GITHUB_TOKEN, AWS_SECRET_ACCESS_KEY.
bool looks_secret(std::string_view name);
// [[name, value], ...] with the value of every secret-looking name masked.
nlohmann::json render_env(const std::vector<std::pair<std::string, std::string>>& env);

// Text for a JSON document: invalid UTF-8 is replaced, never thrown about.
std::string dump(const nlohmann::json& value);

}  // namespace ratchet::dashboard
