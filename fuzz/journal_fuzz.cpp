// libFuzzer target: the SDK's journal, the coroutine state a server (or anyone
// who can reach an unverified endpoint) sends back in every resume. Half the
// inputs are decoded as a journal directly; a quarter go through
// Dispatch::handle as the typed state of a resume of a registered coroutine,
// which replays against it; a quarter play the server's side of journal
// deltas (what an SDK's Poll sent, assembled into the journal a resume
// carries). Invariants: nothing throws out or crashes; every answer is an HTTP
// response with a status; what assembles is a journal.
#include <google/protobuf/any.pb.h>

#include <string>

#include "dispatch/sdk/v1/function.pb.h"
#include "fuzz_input.hpp"
#include "protobuf_quiet.hpp"
#include "protocol/journal_delta.hpp"
#include "ratchet/ratchet.hpp"
#include "sdk/journal.hpp"

namespace {

namespace pb = ::dispatch::sdk::v1;

ratchet::Dispatch& dispatch() {
  static ratchet::Dispatch* instance = [] {
    ratchet::Options options;
    options.api_key = "k";
    options.api_url = "http://127.0.0.1:1";
    options.endpoint_url = "http://127.0.0.1:8000";
    options.endpoint_addr = "127.0.0.1:0";
    options.verification_key = "";
    options.trace = false;
    options.frame_cache_size = 0;  // every resume replays the journal
    auto* d = new ratchet::Dispatch(options);
    static auto leaf = d->function("leaf", [](int x) { return x + 1; });
    d->function("steps", [](int n) -> ratchet::Task<int> {
      int sum = 0;
      for (int i = 0; i < n % 4; ++i) sum += co_await leaf(i);
      co_return sum;
    });
    return d;
  }();
  return *instance;
}

void decode_directly(std::string_view bytes, std::uint8_t choice) {
  google::protobuf::Any state;
  state.set_type_url("type.googleapis.com/ratchet.sdk.v1.Journal");
  state.set_value(std::string(bytes));
  auto journal = ratchet::sdk::decode_journal(state);
  if (!journal.is_ok()) return;
  (void)ratchet::sdk::describe_journal(*journal, "d1");
  for (std::uint64_t step = 1; step <= static_cast<std::uint64_t>(journal->steps_size()); ++step) {
    auto kind = static_cast<ratchet::sdk::jv1::StepKind>(choice % 3);
    (void)ratchet::sdk::check_step(*journal, step, kind, "leaf", choice);
    (void)ratchet::sdk::step_function(*journal, step);
  }
}

void resume(std::string_view bytes) {
  pb::RunRequest run;
  run.set_function("steps");
  run.set_dispatch_id("d1");
  run.set_root_dispatch_id("d1");
  auto* state = run.mutable_poll_result()->mutable_typed_coroutine_state();
  state->set_type_url("type.googleapis.com/ratchet.sdk.v1.Journal");
  state->set_value(std::string(bytes));
  ratchet::Request request;
  request.method = "POST";
  request.path = "/dispatch.sdk.v1.FunctionService/Run";
  request.headers = {{"Host", "127.0.0.1:8000"}, {"Content-Type", "application/proto"}};
  request.body = run.SerializeAsString();
  ratchet::Response response = dispatch().handle(request);
  RATCHET_FUZZ_CHECK(response.status >= 200 && response.status < 600);
}

// The server's side: the revision of a Poll's state, and the journal it
// assembles from a base and the deltas after it (the input: base, then
// deltas, separated by NUL bytes).
void assemble(ratchet::fuzz::Input& input) {
  namespace protocol = ratchet::protocol;
  std::string base(input.until('\0'));
  (void)protocol::state_revision(protocol::kJournalType, base);
  std::vector<std::string> deltas;
  while (!input.rest().empty() && deltas.size() < 64) {
    deltas.emplace_back(input.until('\0'));
    (void)protocol::state_revision(protocol::kJournalDeltaType, deltas.back());
  }
  auto journal = protocol::assemble_journal(base, deltas);
  if (!journal.is_ok() || deltas.empty()) return;  // no delta: the base as it was stored
  google::protobuf::Any any;
  ::ratchet::sdk::v1::Journal parsed;
  RATCHET_FUZZ_CHECK(any.ParseFromString(*journal) && any.type_url() == protocol::kJournalType &&
                     any.UnpackTo(&parsed));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ratchet::fuzz::Input input(data, size);
  std::uint8_t choice = input.byte();
  if (choice & 1) {
    decode_directly(input.rest(), choice);
  } else if (choice & 2) {
    assemble(input);
  } else {
    resume(input.rest());
  }
  return 0;
}
