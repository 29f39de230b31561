// Runs every example of docs/filters.md, so the reference cannot drift from
// the code. The doc marks what this test reads with HTML comments:
//   <!-- message: NAME -->   then a fenced block, one field per line
//   <!-- examples: NAME -->  then a table: | `filter` | yes/no | why |
//   <!-- errors -->          then a table: | `filter` | `error message` |
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/strings.h"
#include "filter/filter.h"

namespace ferry::filter {
namespace {

struct DocMessage {
  std::string topic, key, value;
  int32_t partition = 0;
  int64_t timestamp_ms = 0;
  std::vector<std::pair<std::string, std::string>> headers;
};

struct Doc {
  std::map<std::string, DocMessage> messages;
  // message name -> (filter, expected match)
  std::vector<std::pair<std::string, std::pair<std::string, bool>>> examples;
  std::vector<std::pair<std::string, std::string>> errors;  // filter, message
};

std::vector<std::string> ReadLines() {
  std::ifstream file(std::string(FERRY_SOURCE_DIR) + "/docs/filters.md");
  EXPECT_TRUE(file.good()) << "cannot read docs/filters.md";
  std::vector<std::string> lines;
  for (std::string line; std::getline(file, line);) lines.push_back(line);
  return lines;
}

// The text inside a cell's backticks.
std::string CodeCell(std::string_view cell) {
  cell = Trim(cell);
  EXPECT_TRUE(cell.size() >= 2 && cell.front() == '`' && cell.back() == '`') << cell;
  return std::string(cell.substr(1, cell.size() - 2));
}

// The body rows of the table that starts at lines[i] (header, separator,
// rows), as cells without the outer pipes.
std::vector<std::vector<std::string_view>> TableAt(const std::vector<std::string>& lines,
                                                   size_t i) {
  std::vector<std::vector<std::string_view>> rows;
  for (size_t row = i + 2; row < lines.size() && lines[row].starts_with('|'); ++row) {
    std::string_view line = lines[row];
    std::vector<std::string_view> cells = Split(line.substr(1, line.size() - 2), '|');
    rows.push_back(std::move(cells));
  }
  return rows;
}

DocMessage MessageAt(const std::vector<std::string>& lines, size_t i) {
  DocMessage message;
  EXPECT_EQ(lines.at(i), "```");
  for (size_t row = i + 1; row < lines.size() && lines[row] != "```"; ++row) {
    std::string_view line = lines[row];
    size_t space = line.find(' ');
    std::string_view field = line.substr(0, space);
    std::string value(Trim(line.substr(space)));
    if (field == "topic") {
      message.topic = value;
    } else if (field == "partition") {
      EXPECT_TRUE(ParseInt(value, message.partition));
    } else if (field == "timestamp") {
      EXPECT_TRUE(ParseInt(value, message.timestamp_ms));
    } else if (field == "key") {
      message.key = value;
    } else if (field == "value") {
      message.value = value;
    } else if (field == "header") {
      size_t colon = value.find(": ");
      message.headers.emplace_back(value.substr(0, colon), value.substr(colon + 2));
    } else {
      ADD_FAILURE() << "unknown message field in docs/filters.md: " << line;
    }
  }
  return message;
}

Doc ReadDoc() {
  Doc doc;
  std::vector<std::string> lines = ReadLines();
  const std::string message_marker = "<!-- message: ";
  const std::string examples_marker = "<!-- examples: ";
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    const std::string& line = lines[i];
    if (line.starts_with(message_marker)) {
      std::string name =
          line.substr(message_marker.size(), line.find(" -->") - message_marker.size());
      doc.messages[name] = MessageAt(lines, i + 1);
    } else if (line.starts_with(examples_marker)) {
      std::string name =
          line.substr(examples_marker.size(), line.find(" -->") - examples_marker.size());
      for (const auto& cells : TableAt(lines, i + 1)) {
        std::string_view expected = Trim(cells.at(1));
        EXPECT_TRUE(expected == "yes" || expected == "no") << expected;
        doc.examples.push_back({name, {CodeCell(cells.at(0)), expected == "yes"}});
      }
    } else if (line == "<!-- errors -->") {
      for (const auto& cells : TableAt(lines, i + 1)) {
        doc.errors.emplace_back(CodeCell(cells.at(0)), CodeCell(cells.at(1)));
      }
    }
  }
  return doc;
}

TEST(FilterDocs, EveryExampleMatchesAsDocumented) {
  Doc doc = ReadDoc();
  ASSERT_GE(doc.examples.size(), 30u)
      << "the reader lost the examples of docs/filters.md";
  for (const auto& [message_name, example] : doc.examples) {
    const auto& [text, expected] = example;
    ASSERT_TRUE(doc.messages.contains(message_name)) << message_name;
    const DocMessage& m = doc.messages.at(message_name);
    std::vector<std::pair<std::string_view, std::string_view>> headers(m.headers.begin(),
                                                                       m.headers.end());
    absl::StatusOr<Filter> filter = Filter::Parse(text);
    ASSERT_TRUE(filter.ok()) << text << ": " << filter.status();
    MessageView view{.topic = m.topic,
                     .partition = m.partition,
                     .timestamp_ms = m.timestamp_ms,
                     .key = m.key,
                     .value = m.value,
                     .headers = headers};
    EXPECT_EQ(filter->Matches(view), expected) << "docs/filters.md example: " << text;
  }
}

TEST(FilterDocs, EveryMalformedExampleFailsWithTheDocumentedError) {
  Doc doc = ReadDoc();
  ASSERT_GE(doc.errors.size(), 5u) << "the reader lost the errors of docs/filters.md";
  for (const auto& [text, error] : doc.errors) {
    absl::StatusOr<Filter> filter = Filter::Parse(text);
    ASSERT_FALSE(filter.ok()) << text;
    EXPECT_EQ(filter.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(std::string(filter.status().message()), error);
  }
}

}  // namespace
}  // namespace ferry::filter
