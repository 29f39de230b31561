#include "admin_http/request_builder.h"

#include <fmt/format.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/util/json_util.h>

#include <charconv>
#include <set>

#include "common/strings.h"

namespace ferry::admin_http {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

absl::Status Invalid(std::string message) {
  return absl::InvalidArgumentError(std::move(message));
}

const FieldDescriptor* FieldNamed(const Descriptor& type, std::string_view name) {
  for (int i = 0; i < type.field_count(); ++i) {
    const FieldDescriptor* field = type.field(i);
    if (field->name() == name || field->json_name() == name) return field;
  }
  return nullptr;
}

absl::Status ParseJson(std::string_view body, Message& message) {
  if (Trim(body).empty()) return absl::OkStatus();
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(body.data(), body.size()), &message, options);
  if (status.ok()) return absl::OkStatus();
  return Invalid(fmt::format("request body: {}", std::string(status.message())));
}

bool IsSet(const Message& message, const FieldDescriptor& field) {
  const Reflection& reflection = *message.GetReflection();
  return field.is_repeated() ? reflection.FieldSize(message, &field) > 0
                             : reflection.HasField(message, &field);
}

template <typename Number>
absl::Status ParseNumber(std::string_view text, std::string_view what, Number& out) {
  const char* end = text.data() + text.size();
  auto [stop, error] = std::from_chars(text.data(), end, out);
  if (text.empty() || error != std::errc() || stop != end) {
    return Invalid(fmt::format("\"{}\" is not {}", text, what));
  }
  return absl::OkStatus();
}

// Parses `text` as a T and sets it with `set`, or appends it with `add` to a
// repeated field.
template <typename T>
absl::Status SetNumber(Message& message, const FieldDescriptor& field,
                       std::string_view text, std::string_view what,
                       void (Reflection::*set)(Message*, const FieldDescriptor*, T) const,
                       void (Reflection::*add)(Message*, const FieldDescriptor*, T)
                           const) {
  T value{};
  if (absl::Status s = ParseNumber(text, what, value); !s.ok()) return s;
  (message.GetReflection()->*(field.is_repeated() ? add : set))(&message, &field, value);
  return absl::OkStatus();
}

// Sets (or, for a repeated field, appends) one scalar from its text.
absl::Status SetScalar(Message& message, const FieldDescriptor& field,
                       std::string_view text) {
  const Reflection& r = *message.GetReflection();
  const bool repeated = field.is_repeated();
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      repeated ? r.AddString(&message, &field, std::string(text))
               : r.SetString(&message, &field, std::string(text));
      return absl::OkStatus();
    case FieldDescriptor::CPPTYPE_BOOL:
      if (text != "true" && text != "false") {
        return Invalid(fmt::format("\"{}\" is not true or false", text));
      }
      repeated ? r.AddBool(&message, &field, text == "true")
               : r.SetBool(&message, &field, text == "true");
      return absl::OkStatus();
    case FieldDescriptor::CPPTYPE_INT32:
      return SetNumber<int32_t>(message, field, text, "a 32-bit integer",
                                &Reflection::SetInt32, &Reflection::AddInt32);
    case FieldDescriptor::CPPTYPE_INT64:
      return SetNumber<int64_t>(message, field, text, "an integer", &Reflection::SetInt64,
                                &Reflection::AddInt64);
    case FieldDescriptor::CPPTYPE_UINT32:
      return SetNumber<uint32_t>(message, field, text, "a 32-bit unsigned integer",
                                 &Reflection::SetUInt32, &Reflection::AddUInt32);
    case FieldDescriptor::CPPTYPE_UINT64:
      return SetNumber<uint64_t>(message, field, text, "an unsigned integer",
                                 &Reflection::SetUInt64, &Reflection::AddUInt64);
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return SetNumber<double>(message, field, text, "a number", &Reflection::SetDouble,
                               &Reflection::AddDouble);
    case FieldDescriptor::CPPTYPE_FLOAT:
      return SetNumber<float>(message, field, text, "a number", &Reflection::SetFloat,
                              &Reflection::AddFloat);
    case FieldDescriptor::CPPTYPE_ENUM: {
      const auto* value = field.enum_type()->FindValueByName(std::string(text));
      int number = 0;
      if (value == nullptr && ParseNumber(text, "", number).ok()) {
        value = field.enum_type()->FindValueByNumber(number);
      }
      if (value == nullptr) {
        return Invalid(fmt::format("\"{}\" is not a value of {}", text,
                                   field.enum_type()->full_name()));
      }
      repeated ? r.AddEnum(&message, &field, value) : r.SetEnum(&message, &field, value);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      break;
  }
  return Invalid("a message field: set it in the JSON body");
}

// Applies URL-given fields; `place` names them in errors ("path field",
// "query parameter"). `from_url` collects the fields set so far from the URL.
absl::Status ApplyUrlFields(const QueryParams& fields, std::string_view place,
                            std::set<const FieldDescriptor*>& from_url,
                            Message& request) {
  const Descriptor& type = *request.GetDescriptor();
  for (const auto& [name, value] : fields) {
    const FieldDescriptor* field = FieldNamed(type, name);
    if (field == nullptr) {
      return Invalid(
          fmt::format("{} \"{}\": {} has no such field", place, name, type.full_name()));
    }
    const bool first_from_url = from_url.insert(field).second;
    if (first_from_url && IsSet(request, *field)) {
      return Invalid(
          fmt::format("{} \"{}\": also set in the body; give it once", place, name));
    }
    if (!first_from_url && !field->is_repeated()) {
      return Invalid(fmt::format("{} \"{}\": given twice", place, name));
    }
    if (absl::Status s = SetScalar(request, *field, value); !s.ok()) {
      return Invalid(fmt::format("{} \"{}\": {}", place, name, std::string(s.message())));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status BuildRequest(std::string_view body, std::string_view body_field,
                          const QueryParams& path_fields, const QueryParams& query,
                          Message& request) {
  Message* body_target = &request;
  if (!body_field.empty()) {
    const FieldDescriptor* field = FieldNamed(*request.GetDescriptor(), body_field);
    if (field == nullptr || field->is_repeated() ||
        field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
      return absl::InternalError(fmt::format("{} has no message field \"{}\"",
                                             request.GetDescriptor()->full_name(),
                                             body_field));
    }
    body_target = request.GetReflection()->MutableMessage(&request, field);
  }
  if (absl::Status s = ParseJson(body, *body_target); !s.ok()) return s;
  std::set<const FieldDescriptor*> from_url;
  if (absl::Status s = ApplyUrlFields(path_fields, "path field", from_url, request);
      !s.ok()) {
    return s;
  }
  return ApplyUrlFields(query, "query parameter", from_url, request);
}

}  // namespace ferry::admin_http
