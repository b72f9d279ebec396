// Text formats of the inventory: cpu lists, PCI addresses, NVLink sidecars.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gpu/cpu_list.h"
#include "gpu/links_file.h"
#include "gpu/pci_address.h"

namespace gangway::gpu {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

TEST(CpuListTest, ParsesRangesAndSingles) {
  auto cpus = ParseCpuList("0-3,8-11,16");
  ASSERT_TRUE(cpus.ok()) << cpus.status();
  EXPECT_THAT(*cpus, ElementsAre(0, 1, 2, 3, 8, 9, 10, 11, 16));
}

TEST(CpuListTest, SortsAndDeduplicatesAndIgnoresSpaces) {
  auto cpus = ParseCpuList(" 5, 0-2 ,1-3,5\n");
  ASSERT_TRUE(cpus.ok()) << cpus.status();
  EXPECT_THAT(*cpus, ElementsAre(0, 1, 2, 3, 5));
}

TEST(CpuListTest, EmptyIsTheEmptySet) {
  for (const char* text : {"", "  ", "\n"}) {
    auto cpus = ParseCpuList(text);
    ASSERT_TRUE(cpus.ok()) << text;
    EXPECT_THAT(*cpus, IsEmpty());
  }
}

TEST(CpuListTest, RejectsMalformedItemsNamingThem) {
  for (const char* text : {"a", "1-", "-1", "3-1", "1,,2", "1:2", "0-15:2", "+3", "1-2-3", "0x1",
                           "70000", "0-70000", "1 2"}) {
    auto cpus = ParseCpuList(text);
    EXPECT_FALSE(cpus.ok()) << text;
    EXPECT_EQ(cpus.status().code(), absl::StatusCode::kInvalidArgument) << text;
  }
  EXPECT_THAT(std::string(ParseCpuList("0-3,x").status().message()), HasSubstr("\"x\""));
  EXPECT_THAT(std::string(ParseCpuList("7-3").status().message()), HasSubstr("backwards"));
}

TEST(CpuListTest, RepeatedWideRangesStayCheap) {
  std::string text = "0-65535";
  for (int i = 0; i < 2000; ++i) text += ",0-65535";
  auto cpus = ParseCpuList(text);
  ASSERT_TRUE(cpus.ok());
  EXPECT_EQ(cpus->size(), 65536u);
}

TEST(CpuListTest, FormatsRunsAsRanges) {
  EXPECT_EQ(FormatCpuList(std::vector<int>{}), "");
  EXPECT_EQ(FormatCpuList(std::vector<int>{3}), "3");
  EXPECT_EQ(FormatCpuList(std::vector<int>{11, 0, 1, 2, 3, 8, 9, 10, 3, 16, 18, 19}),
            "0-3,8-11,16,18-19");
  EXPECT_EQ(FormatCpuList(std::vector<int>{-1, 4}), "4");
}

TEST(CpuListTest, FormatThenParseRoundTrips) {
  const std::vector<int> cpus = {0, 1, 2, 5, 7, 8, 9, 63, 64};
  auto parsed = ParseCpuList(FormatCpuList(cpus));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, cpus);
}

TEST(PciAddressTest, ParsesEverySpellingToOneValue) {
  const PciAddress want{0, 0x07, 0, 0};
  for (const char* text : {"00000000:07:00.0", "0000:07:00.0", "07:00.0", " 0000:07:00.0 "}) {
    auto address = ParsePciAddress(text);
    ASSERT_TRUE(address.ok()) << text;
    EXPECT_EQ(*address, want) << text;
  }
  auto upper = ParsePciAddress("0001:BD:1F.7");
  ASSERT_TRUE(upper.ok());
  EXPECT_EQ(*upper, (PciAddress{1, 0xbd, 0x1f, 7}));
}

TEST(PciAddressTest, FormatsNvmlStyle) {
  EXPECT_EQ(FormatPciAddress({0, 0xbd, 0, 0}), "00000000:BD:00.0");
  EXPECT_EQ(FormatPciAddress({0x10000, 1, 2, 3}), "00010000:01:02.3");
}

TEST(PciAddressTest, RejectsMalformed) {
  for (const char* text : {"", "07", "07:00", "0000:07:00", "0000:07:20.0", "0000:07:00.8",
                           "0000:107:00.0", "123456789:07:00.0", "00:00:07:00.0", "0g:00.0"}) {
    EXPECT_FALSE(ParsePciAddress(text).ok()) << text;
  }
}

TEST(LinksFileTest, ParsesPairsSymmetricallyWithComments) {
  auto links = ParseLinks("# pairs\n0 1 12\n\n3\t2 4  # trailing\n", 4, "t.links");
  ASSERT_TRUE(links.ok()) << links.status();
  EXPECT_THAT((*links)[0], ElementsAre(0, 12, 0, 0));
  EXPECT_THAT((*links)[1], ElementsAre(12, 0, 0, 0));
  EXPECT_THAT((*links)[2], ElementsAre(0, 0, 0, 4));
  EXPECT_THAT((*links)[3], ElementsAre(0, 0, 4, 0));
}

TEST(LinksFileTest, ErrorsNameTheFileAndLine) {
  struct Case {
    const char* text;
    const char* says;
  } cases[] = {
      {"0 1\n", "t.links:1: want"},
      {"\n0 1 x\n", "t.links:2: want"},
      {"0 4 1\n", "t.links:1: GPU 4 does not exist"},
      {"-1 0 1\n", "GPU -1 does not exist"},
      {"2 2 1\n", "linked to itself"},
      {"0 1 -3\n", "NVLink count -3"},
      {"0 1 2\n1 0 2\n", "t.links:2: pair 1 0 is listed twice"},
  };
  for (const auto& c : cases) {
    auto links = ParseLinks(c.text, 4, "t.links");
    ASSERT_FALSE(links.ok()) << c.text;
    EXPECT_EQ(links.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(links.status().message()), HasSubstr(c.says)) << c.text;
  }
}

TEST(LinksFileTest, SidecarPathReplacesTheXmlExtension) {
  EXPECT_EQ(LinksPathFor("/t/dgx.xml"), "/t/dgx.links");
  EXPECT_EQ(LinksPathFor("/t/dgx.XML"), "/t/dgx.links");
  EXPECT_EQ(LinksPathFor("/t/dgx"), "/t/dgx.links");
}

TEST(LinksFileTest, MissingFileIsNotFound) {
  auto links = ReadLinksFile("/nonexistent/x.links", 2);
  EXPECT_EQ(links.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace gangway::gpu
