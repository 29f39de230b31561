#include "admin_http/openapi.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <google/protobuf/descriptor.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <nlohmann/json.hpp>

#include "admin_http/path_router.h"

namespace ferry::admin_http {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using Json = nlohmann::ordered_json;

constexpr std::string_view kSchemas = "#/components/schemas/";

// Schemas of the messages reachable from the operations, by full name.
class Schemas {
 public:
  Json MessageRef(const Descriptor& type) {
    if (type.full_name() == "google.protobuf.Timestamp") {
      return {{"type", "string"}, {"format", "date-time"}};
    }
    if (type.full_name() == "google.protobuf.Duration") {
      return {{"type", "string"}, {"example", "1.5s"}};
    }
    if (!schemas_.contains(type.full_name())) {
      schemas_[type.full_name()] = Json::object();  // stops recursion
      schemas_[type.full_name()] = Message(type);
    }
    return {{"$ref", fmt::format("{}{}", kSchemas, type.full_name())}};
  }

  Json Field(const FieldDescriptor& field) {
    if (field.is_map()) {
      return {{"type", "object"},
              {"additionalProperties", Single(*field.message_type()->map_value())}};
    }
    if (field.is_repeated()) return {{"type", "array"}, {"items", Single(field)}};
    return Single(field);
  }

  Json Render() const {
    Json out = Json::object();
    for (const auto& [name, schema] : schemas_) out[name] = schema;
    return out;
  }

 private:
  Json Message(const Descriptor& type) {
    Json properties = Json::object();
    for (int i = 0; i < type.field_count(); ++i) {
      properties[type.field(i)->json_name()] = Field(*type.field(i));
    }
    Json schema = {{"type", "object"}, {"properties", properties}};
    for (int i = 0; i < type.real_oneof_decl_count(); ++i) {
      const auto* oneof = type.oneof_decl(i);  // real oneofs come first
      std::vector<std::string> names;
      for (int f = 0; f < oneof->field_count(); ++f) {
        names.push_back(oneof->field(f)->json_name());
      }
      schema["description"] = fmt::format("At most one of: {}.", fmt::join(names, ", "));
    }
    return schema;
  }

  Json Single(const FieldDescriptor& field) {
    switch (field.type()) {
      case FieldDescriptor::TYPE_INT32:
      case FieldDescriptor::TYPE_SINT32:
      case FieldDescriptor::TYPE_SFIXED32:
        return {{"type", "integer"}, {"format", "int32"}};
      case FieldDescriptor::TYPE_UINT32:
      case FieldDescriptor::TYPE_FIXED32:
        return {{"type", "integer"}, {"format", "uint32"}};
      // gRPC's JSON mapping writes 64-bit integers as strings (and reads both).
      case FieldDescriptor::TYPE_INT64:
      case FieldDescriptor::TYPE_SINT64:
      case FieldDescriptor::TYPE_SFIXED64:
        return {{"type", "string"}, {"format", "int64"}};
      case FieldDescriptor::TYPE_UINT64:
      case FieldDescriptor::TYPE_FIXED64:
        return {{"type", "string"}, {"format", "uint64"}};
      case FieldDescriptor::TYPE_FLOAT:
        return {{"type", "number"}, {"format", "float"}};
      case FieldDescriptor::TYPE_DOUBLE:
        return {{"type", "number"}, {"format", "double"}};
      case FieldDescriptor::TYPE_BOOL:
        return {{"type", "boolean"}};
      case FieldDescriptor::TYPE_STRING:
        return {{"type", "string"}};
      case FieldDescriptor::TYPE_BYTES:
        return {{"type", "string"}, {"format", "byte"}};
      case FieldDescriptor::TYPE_ENUM: {
        Json values = Json::array();
        for (int i = 0; i < field.enum_type()->value_count(); ++i) {
          values.push_back(field.enum_type()->value(i)->name());
        }
        return {{"type", "string"}, {"enum", values}};
      }
      case FieldDescriptor::TYPE_MESSAGE:
      case FieldDescriptor::TYPE_GROUP:
        return MessageRef(*field.message_type());
    }
    return Json::object();
  }

  std::map<std::string, Json> schemas_;
};

Json JsonContent(Json schema) {
  return {{"application/json", {{"schema", std::move(schema)}}}};
}

Json Responses(Schemas& schemas, const AdminMethod& method) {
  const Json error = JsonContent({{"$ref", fmt::format("{}Error", kSchemas)}});
  Json responses = {{"200",
                     {{"description", "The method's response."},
                      {"content", JsonContent(schemas.MessageRef(
                                      *method.descriptor->output_type()))}}}};
  if (!method.read_only) {
    responses["403"] = {
        {"description",
         "Writes are off (admin.http.allow_writes) and no bearer token was sent."},
        {"content", error}};
  }
  responses["default"] = {
      {"description", "The gRPC status as {code, message} with its HTTP status."},
      {"content", error}};
  return responses;
}

Json Operation(Schemas& schemas, const AdminMethod& method, std::string operation_id) {
  Json operation = {
      {"operationId", std::move(operation_id)},
      {"summary", fmt::format("{}.{}{}", method.descriptor->service()->full_name(),
                              method.descriptor->name(),
                              method.read_only ? "" : " (changes state)")},
      {"responses", Responses(schemas, method)}};
  if (!method.read_only) {
    Json bearer = Json::object();
    bearer["bearerAuth"] = Json::array();
    operation["security"] = Json::array({bearer});
  }
  return operation;
}

// Fields a query string can set: scalars and repeated scalars.
bool QueryField(const FieldDescriptor& field) {
  return field.cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE;
}

Json ResourceOperation(Schemas& schemas, const AdminMethod& method,
                       const ResourceRoute& route) {
  Json operation = Operation(schemas, method, std::string(route.method));
  const Descriptor& input = *method.descriptor->input_type();
  Json parameters = Json::array();
  std::vector<std::string> path_fields;
  for (std::string_view name : PatternFields(route.pattern)) {
    const FieldDescriptor* field = input.FindFieldByName(std::string(name));
    parameters.push_back({{"name", name},
                          {"in", "path"},
                          {"required", true},
                          {"schema", schemas.Field(*field)}});
    path_fields.emplace_back(name);
  }
  const bool has_body = route.verb == "POST" || route.verb == "PUT";
  if (!has_body) {
    for (int i = 0; i < input.field_count(); ++i) {
      const FieldDescriptor& field = *input.field(i);
      if (!QueryField(field) || std::find(path_fields.begin(), path_fields.end(),
                                          field.name()) != path_fields.end()) {
        continue;
      }
      parameters.push_back({{"name", field.name()},
                            {"in", "query"},
                            {"required", false},
                            {"schema", schemas.Field(field)}});
    }
  }
  if (!parameters.empty()) operation["parameters"] = parameters;
  if (has_body) {
    const Descriptor& body =
        route.body_field.empty()
            ? input
            : *input.FindFieldByName(std::string(route.body_field))->message_type();
    operation["requestBody"] = {{"required", false},
                                {"content", JsonContent(schemas.MessageRef(body))}};
  }
  return operation;
}

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::string OpenApiDocument(const AdminMethods& methods, std::string_view version) {
  Schemas schemas;
  Json paths = Json::object();
  for (const ResourceRoute& route : ResourceRoutes()) {
    const AdminMethod* method = methods.Find(route.method);
    if (method == nullptr) continue;  // AdminHttpApi refuses to start then
    paths[std::string(route.pattern)][Lower(route.verb)] =
        ResourceOperation(schemas, *method, route);
  }
  for (const auto& [name, method] : methods.all()) {
    Json operation = Operation(schemas, method, fmt::format("admin{}", name));
    operation["requestBody"] = {
        {"required", false},
        {"content", JsonContent(schemas.MessageRef(*method.descriptor->input_type()))}};
    paths[fmt::format("{}{}", kGenericPrefix, name)]["post"] = std::move(operation);
  }
  paths[fmt::format("{}/openapi.json", kApiPrefix)]["get"] = {
      {"operationId", "openapi"},
      {"summary", "This document."},
      {"responses", {{"200", {{"description", "OpenAPI 3.0 document"}}}}}};

  Json components_schemas = schemas.Render();
  components_schemas["Error"] = {
      {"type", "object"},
      {"properties",
       {{"code", {{"type", "string"}, {"example", "NOT_FOUND"}}},
        {"message", {{"type", "string"}}}}}};
  Json document = {
      {"openapi", "3.0.3"},
      {"info",
       {{"title", "Ferry admin API"},
        {"version", version},
        {"description",
         fmt::format("The gRPC service {} over HTTP with gRPC's JSON mapping. Errors "
                     "are {{code, message}} with the HTTP status of the gRPC code. "
                     "Operations that change state need admin.http.allow_writes or "
                     "Authorization: Bearer <admin.http.token>.",
                     methods.service().full_name())}}},
      {"paths", paths},
      {"components",
       {{"schemas", components_schemas},
        {"securitySchemes",
         {{"bearerAuth", {{"type", "http"}, {"scheme", "bearer"}}}}}}}};
  return document.dump(2);
}

}  // namespace ferry::admin_http
