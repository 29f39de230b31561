#include "filter/json_reader.h"

#include <simdjson.h>

#include <cstring>

namespace ferry::filter {
namespace {

namespace ondemand = simdjson::ondemand;

struct ThreadParser {
  ondemand::parser parser;
  std::vector<char> padded;  // the value plus SIMDJSON_PADDING readable bytes
  ondemand::document document;
  uint64_t generation = 0;  // incremented by every parse on this thread
};

ThreadParser& ThisThreadParser() {
  thread_local ThreadParser parser;
  return parser;
}

// What an error while walking a path means.
JsonReader::Result Classify(simdjson::error_code error) {
  switch (error) {
    case simdjson::NO_SUCH_FIELD:
    case simdjson::INDEX_OUT_OF_BOUNDS:
    case simdjson::INCORRECT_TYPE:
      return JsonReader::Result::kMissing;
    default:
      return JsonReader::Result::kNotJson;
  }
}

// Reads the scalar (or notes the composite) at `value`.
simdjson::error_code Read(ondemand::value& value, Value& out) {
  ondemand::json_type type;
  if (auto error = value.type().get(type)) return error;
  switch (type) {
    case ondemand::json_type::object:
    case ondemand::json_type::array:
      out.type = Value::Type::kComposite;
      return simdjson::SUCCESS;
    case ondemand::json_type::string:
      out.type = Value::Type::kString;
      return value.get_string().get(out.string);
    case ondemand::json_type::boolean:
      out.type = Value::Type::kBool;
      return value.get_bool().get(out.boolean);
    case ondemand::json_type::null: {
      out.type = Value::Type::kNull;
      bool is_null = false;
      if (auto error = value.is_null().get(is_null)) return error;
      return is_null ? simdjson::SUCCESS : simdjson::N_ATOM_ERROR;
    }
    case ondemand::json_type::number:
      break;
  }
  out.type = Value::Type::kNumber;
  ondemand::number_type number_type;
  if (auto error = value.get_number_type().get(number_type)) return error;
  switch (number_type) {
    case ondemand::number_type::signed_integer:
      out.number.is_integer = true;
      return value.get_int64().get(out.number.integer);
    case ondemand::number_type::unsigned_integer: {
      // Beyond int64: compared as a double, like an integer literal that big.
      uint64_t big = 0;
      if (auto error = value.get_uint64().get(big)) return error;
      out.number = {.is_integer = false, .real = static_cast<double>(big)};
      return simdjson::SUCCESS;
    }
    case ondemand::number_type::floating_point_number:
      out.number.is_integer = false;
      return value.get_double().get(out.number.real);
  }
  return simdjson::INCORRECT_TYPE;
}

}  // namespace

JsonReader::Result JsonReader::Find(const std::vector<JsonStep>& path, Value& out) {
  if (not_json_) return Result::kNotJson;
  ThreadParser& thread = ThisThreadParser();
  if (parse_generation_ != 0 && parse_generation_ == thread.generation) {
    thread.document.rewind();
  } else {
    if (value_.empty()) {
      not_json_ = true;
      return Result::kNotJson;
    }
    const size_t capacity = value_.size() + simdjson::SIMDJSON_PADDING;
    if (thread.padded.size() < capacity) thread.padded.resize(capacity);
    std::memcpy(thread.padded.data(), value_.data(), value_.size());
    parse_generation_ = ++thread.generation;
    if (thread.parser.iterate(thread.padded.data(), value_.size(), capacity)
            .get(thread.document) != simdjson::SUCCESS) {
      not_json_ = true;
      return Result::kNotJson;
    }
  }
  ondemand::value current;
  // A scalar document (SCALAR_DOCUMENT_AS_VALUE) has no fields: it is
  // counted with values that are not JSON objects or arrays.
  if (thread.document.get_value().get(current) != simdjson::SUCCESS) {
    not_json_ = true;
    return Result::kNotJson;
  }
  simdjson::error_code error = simdjson::SUCCESS;
  for (const JsonStep& step : path) {
    if (step.is_index) {
      ondemand::array array;
      error = current.get_array().get(array);
      if (error == simdjson::SUCCESS) error = array.at(step.index).get(current);
    } else {
      error = current.find_field_unordered(step.name).get(current);
    }
    if (error != simdjson::SUCCESS) break;
  }
  Result result = error == simdjson::SUCCESS ? Result::kFound : Classify(error);
  // The path is there; a value that does not read (a broken atom or
  // number) means broken JSON, whatever simdjson calls the error.
  if (result == Result::kFound && Read(current, out) != simdjson::SUCCESS) {
    result = Result::kNotJson;
  }
  not_json_ = result == Result::kNotJson;
  return result;
}

}  // namespace ferry::filter
