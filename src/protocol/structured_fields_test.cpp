#include "protocol/structured_fields.hpp"

#include <gtest/gtest.h>

namespace ratchet::protocol::sf {
namespace {

TEST(StructuredFields, ParsesADictionaryOfItemsAndInnerLists) {
  Result<Dictionary> dict =
      parse_dictionary(R"(a=1, b=?0, c, d=("x" y);p=:AQI=:, e=-1.50, f=tok/en:1;q)");
  ASSERT_TRUE(dict.is_ok()) << dict.status().message();
  ASSERT_EQ(dict->size(), 6u);
  EXPECT_EQ(std::get<Item>(*find_member(*dict, "a")).value, BareItem(std::int64_t{1}));
  EXPECT_EQ(std::get<Item>(*find_member(*dict, "b")).value, BareItem(false));
  EXPECT_EQ(std::get<Item>(*find_member(*dict, "c")).value, BareItem(true));
  const InnerList& d = std::get<InnerList>(*find_member(*dict, "d"));
  ASSERT_EQ(d.items.size(), 2u);
  EXPECT_EQ(d.items[0].value, BareItem(std::string("x")));
  EXPECT_EQ(d.items[1].value, BareItem(Token{"y"}));
  EXPECT_EQ(*find_parameter(d.params, "p"), BareItem(ByteSequence{"\x01\x02"}));
  EXPECT_EQ(std::get<Item>(*find_member(*dict, "e")).value, BareItem(Decimal{"-1.5"}));
  const Item& f = std::get<Item>(*find_member(*dict, "f"));
  EXPECT_EQ(f.value, BareItem(Token{"tok/en:1"}));
  EXPECT_EQ(*find_parameter(f.params, "q"), BareItem(true));
}

TEST(StructuredFields, ARepeatedKeyOverwritesInPlace) {
  Result<Dictionary> dict = parse_dictionary("a=1, b=2, a=3");
  ASSERT_TRUE(dict.is_ok());
  ASSERT_EQ(dict->size(), 2u);
  EXPECT_EQ(dict->front().first, "a");
  EXPECT_EQ(std::get<Item>(dict->front().second).value, BareItem(std::int64_t{3}));
}

TEST(StructuredFields, EmptyIsAnEmptyDictionary) {
  EXPECT_TRUE(parse_dictionary("")->empty());
  EXPECT_TRUE(parse_dictionary("   ")->empty());
}

TEST(StructuredFields, UnescapesAndReescapesStrings) {
  Result<Dictionary> dict = parse_dictionary(R"(s=("a\"b\\c"))");
  ASSERT_TRUE(dict.is_ok()) << dict.status().message();
  const InnerList& list = std::get<InnerList>(dict->front().second);
  EXPECT_EQ(list.items[0].value, BareItem(std::string("a\"b\\c")));
  EXPECT_EQ(serialize_inner_list(list), R"(("a\"b\\c"))");
}

TEST(StructuredFields, SerializesCanonically) {
  InnerList list;
  list.items.push_back(Item{std::string("@method"), {}});
  list.items.push_back(Item{Token{"t"}, {{"flag", true}, {"n", std::int64_t{-3}}}});
  list.params = {{"created", std::int64_t{1719000000}},
                 {"b", ByteSequence{"hi"}},
                 {"off", false},
                 {"d", Decimal{"2.5"}}};
  EXPECT_EQ(serialize_inner_list(list),
            R"(("@method" t;flag;n=-3);created=1719000000;b=:aGk=:;off=?0;d=2.5)");
}

TEST(StructuredFields, RejectsMalformedFieldsWithTheOffset) {
  for (const char* bad : {"A=1", "a=", "a=1,", "a=1 b=2", "a=(1 2", "a=\"x", "a=:AAA", "a=?2",
                          "a=1.", "a=1.2345", "a=1234567890123456", "a=(\"x\"\"y\")", "a=\"\t\"",
                          "a=\"\\n\"", "a=((1))", "a=1;", "a=1;B"}) {
    Result<Dictionary> dict = parse_dictionary(bad);
    ASSERT_FALSE(dict.is_ok()) << bad;
    EXPECT_NE(dict.status().message().find("offset"), std::string::npos) << bad;
  }
}

TEST(StructuredFields, EnforcesItsLimits) {
  Limits limits;
  limits.max_field_bytes = 10;
  EXPECT_FALSE(parse_dictionary("a=1, b=2, c=3", limits).is_ok());
  limits = Limits{};
  limits.max_members = 2;
  EXPECT_FALSE(parse_dictionary("a, b, c", limits).is_ok());
  EXPECT_TRUE(parse_dictionary("a, b, a", limits).is_ok());
  limits = Limits{};
  limits.max_inner_list_items = 2;
  EXPECT_FALSE(parse_dictionary("a=(1 2 3)", limits).is_ok());
  limits = Limits{};
  limits.max_parameters = 1;
  EXPECT_FALSE(parse_dictionary("a;x;y", limits).is_ok());
}

TEST(StructuredFields, ReadsTheLargestIntegers) {
  Result<Dictionary> dict = parse_dictionary("a=999999999999999, b=-999999999999999");
  ASSERT_TRUE(dict.is_ok());
  EXPECT_EQ(std::get<Item>((*dict)[0].second).value, BareItem(std::int64_t{999999999999999}));
  EXPECT_EQ(std::get<Item>((*dict)[1].second).value, BareItem(std::int64_t{-999999999999999}));
}

}  // namespace
}  // namespace ratchet::protocol::sf
