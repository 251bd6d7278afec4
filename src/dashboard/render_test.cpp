#include "dashboard/render.hpp"

#include <google/protobuf/any.pb.h>
#include <google/protobuf/wrappers.pb.h>
#include <gtest/gtest.h>

#include "dispatch/sdk/python/v1/pickled.pb.h"
#include "dispatch/sdk/v1/error.pb.h"
#include "protocol/values.hpp"
#include "ratchet/sdk/v1/journal.pb.h"

namespace ratchet::dashboard {
namespace {

using json = nlohmann::json;

std::string serialized(const google::protobuf::Any& any) { return any.SerializeAsString(); }

TEST(RenderValue, JsonLikeValuesAreJson) {
  auto packed = protocol::pack_json({{"n", 3}, {"tags", {"a", "b"}}});
  ASSERT_TRUE(packed.is_ok());
  json shown = render_value(serialized(*packed));
  EXPECT_EQ(shown["kind"], "json");
  EXPECT_EQ(shown["json"], json({{"n", 3}, {"tags", {"a", "b"}}}));
  EXPECT_EQ(render_value(serialized(protocol::pack_int64(42)))["json"], 42);
  EXPECT_EQ(render_value(serialized(protocol::pack_null())),
            json({{"kind", "json"}, {"json", nullptr}}));
}

TEST(RenderValue, StringsAndUtf8BytesAreText) {
  EXPECT_EQ(render_value(serialized(protocol::pack_string("héllo"))),
            json({{"kind", "text"}, {"text", "héllo"}}));
  EXPECT_EQ(render_value(serialized(protocol::pack_bytes("plain")))["kind"], "text");
  json binary = render_value(serialized(protocol::pack_bytes(std::string("\xff\x00\x01", 3))));
  EXPECT_EQ(binary["kind"], "bytes");
  EXPECT_EQ(binary["size"], 3);
  EXPECT_EQ(binary["hex"], "ff0001");
}

TEST(RenderValue, PicklesArePythonObjectsWithTheirSize) {
  dispatch::sdk::python::v1::Pickled pickled;
  pickled.set_pickled_value(std::string(120, 'p'));
  google::protobuf::Any any;
  any.set_type_url(std::string(protocol::kPickledTypeUrl));
  any.set_value(pickled.SerializeAsString());
  json shown = render_value(serialized(any));
  EXPECT_EQ(shown["kind"], "python");
  EXPECT_EQ(shown["size"], 120);
  EXPECT_EQ(shown["summary"], "Python object, 120 bytes");
}

TEST(RenderValue, OtherMessagesNameTheirTypeAndGarbageIsBytes) {
  google::protobuf::Any any;
  any.set_type_url("type.googleapis.com/acme.Order");
  any.set_value("\x0a\x03xyz");
  EXPECT_EQ(render_value(serialized(any)),
            json({{"kind", "message"}, {"type", "acme.Order"}, {"size", 5}}));
  EXPECT_EQ(render_value("\xff\xff\xff")["kind"], "bytes");
  EXPECT_EQ(render_value(""), json({{"kind", "none"}}));
}

TEST(RenderCoroutineState, DecodesTheCppJournalStepByStep) {
  ratchet::sdk::v1::Journal journal;
  journal.set_version(2);
  journal.set_function("pipeline");
  *journal.mutable_input() = protocol::pack_string("hello");
  journal.add_names("transform");
  journal.add_names("type.googleapis.com/google.protobuf.StringValue");
  journal.add_names("publish");
  auto* done = journal.add_steps();
  done->set_function(0);
  done->mutable_output()->set_type(1);
  google::protobuf::StringValue out;
  out.set_value("hello!");
  done->mutable_output()->set_value(out.SerializeAsString());
  done->set_completion(1);
  auto* failed = journal.add_steps();
  failed->set_function(2);
  failed->mutable_error()->set_type("TemporaryError");
  failed->mutable_error()->set_message("503");
  failed->set_completion(2);
  journal.add_steps()->set_function(2);
  journal.set_completed(2);
  google::protobuf::Any state;
  state.PackFrom(journal);

  json shown = render_coroutine_state(6, state.SerializeAsString());
  EXPECT_EQ(shown["kind"], "journal");
  EXPECT_EQ(shown["function"], "pipeline");
  EXPECT_EQ(shown["input"]["text"], "hello");
  ASSERT_EQ(shown["steps"].size(), 3u);
  EXPECT_EQ(shown["steps"][0]["function"], "transform");
  EXPECT_EQ(shown["steps"][0]["state"], "ok");
  EXPECT_EQ(shown["steps"][0]["output"]["text"], "hello!");
  EXPECT_EQ(shown["steps"][1]["state"], "error");
  EXPECT_EQ(shown["steps"][1]["error"]["type"], "TemporaryError");
  EXPECT_EQ(shown["steps"][2]["step"], 3);
  EXPECT_EQ(shown["steps"][2]["state"], "pending");
}

TEST(RenderCoroutineState, PythonStatesAndBadJournalsAreDescribedNotDecoded) {
  EXPECT_EQ(render_coroutine_state(1, std::string(40, 'x'))["summary"], "Python object, 40 bytes");
  google::protobuf::Any broken;
  broken.set_type_url("type.googleapis.com/ratchet.sdk.v1.Journal");
  broken.set_value("\xff\xff\xff\xff");
  EXPECT_EQ(render_coroutine_state(6, broken.SerializeAsString())["kind"], "message");
  // A step naming a function index it does not have.
  ratchet::sdk::v1::Journal journal;
  journal.add_steps()->set_function(7);
  google::protobuf::Any state;
  state.PackFrom(journal);
  EXPECT_EQ(render_coroutine_state(6, state.SerializeAsString())["steps"][0]["function"], "?");
}

TEST(RenderError, ShowsTheTracebackAndExceptionOfTheEndpointsErrorBytes) {
  dispatch::sdk::v1::Error python;
  python.set_type("KeyError");
  python.set_message("'x'");
  python.set_value(std::string("\x80\x04\x95\x10\x00.", 6));  // a pickle
  python.set_traceback("Traceback (most recent call last):\n  File \"app.py\"\n");
  json shown = render_error(CallError{"KeyError", "'x'", python.SerializeAsString()});
  EXPECT_EQ(shown["type"], "KeyError");
  EXPECT_EQ(shown["traceback"], python.traceback());
  EXPECT_EQ(shown["value"]["summary"], "Python object, 6 bytes");
}

TEST(RenderError, ShowsTypeAndMessageOnlyWithoutUsableErrorBytes) {
  json plain = {{"type", "E"}, {"message", "boom"}};
  EXPECT_EQ(render_error(CallError{"E", "boom"}), plain) << "an error the server made";
  EXPECT_EQ(render_error(CallError{"E", "boom", "\xff\xff not an Error"}), plain);
  dispatch::sdk::v1::Error binary;
  binary.set_traceback("\xff\xfe");
  EXPECT_EQ(render_error(CallError{"E", "boom", binary.SerializeAsString()}), plain)
      << "a traceback that is not text is not shown";
}

TEST(RenderEnv, MasksTheValuesOfSecretLookingNames) {
  json env = render_env({{"MODE", "full"},
                         {"API_KEY", "k1"},
                         {"db_password", "p"},
                         {"GITHUB_TOKEN", "t"},
                         {"AWS_SECRET_ACCESS_KEY", "s"}});
  EXPECT_EQ(env[0], json({{"name", "MODE"}, {"value", "full"}}));
  for (int i = 1; i < 5; ++i) {
    EXPECT_EQ(env[i]["masked"], true) << env[i];
    EXPECT_FALSE(env[i].contains("value")) << env[i];
  }
  EXPECT_NE(dump(env).find("full"), std::string::npos);
  EXPECT_EQ(dump(env).find("k1"), std::string::npos);
}

TEST(Dump, InvalidUtf8IsReplacedNotThrown) {
  EXPECT_NO_THROW(dump(json{{"x", std::string("\xff\xfe")}}));
}

}  // namespace
}  // namespace ratchet::dashboard
