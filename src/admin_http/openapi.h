#pragma once

// The OpenAPI 3.0 description of the HTTP admin API, served at
// GET /api/v1/openapi.json. Built once at start-up from the Admin service's
// descriptors and ResourceRoutes(), so it always matches what is served.

#include <string>
#include <string_view>

#include "admin_http/admin_methods.h"

namespace ferry::admin_http {

// Every method as POST /api/v1/admin/<Method>, every resource route with its
// path and query parameters, and one schema per message in gRPC's JSON
// mapping (lowerCamelCase names, 64-bit integers as strings, enums by name,
// Timestamp as RFC 3339, Duration as "1.5s"). Mutating operations carry the
// bearer security requirement.
std::string OpenApiDocument(const AdminMethods& methods, std::string_view version);

}  // namespace ferry::admin_http
