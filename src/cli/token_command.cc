#include "cli/token_command.h"

#include <fmt/format.h>
#include <openssl/rand.h>

#include <iostream>
#include <optional>

#include "absl/time/clock.h"
#include "security/acl_rule.h"
#include "security/token_table.h"

namespace ferry::cli {
namespace {

struct TokenArgs {
  std::string principal;
  std::string id;
  std::string expires_in;
};

// `bytes` random bytes from OpenSSL's CSPRNG; nullopt when it fails.
std::optional<std::string> RandomBytes(int bytes) {
  std::string out(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), bytes) != 1) {
    return std::nullopt;
  }
  return out;
}

std::string Hex(std::string_view raw) {
  std::string out;
  for (unsigned char c : raw) out += fmt::format("{:02x}", c);
  return out;
}

int Create(const TokenArgs& args) {
  if (absl::Status s = security::ValidatePrincipal(args.principal);
      !s.ok() || args.principal == "*") {
    std::cerr << "ferry: token create: --principal: not 1..256 printable characters "
                 "without spaces (nor *)\n";
    return 2;
  }
  absl::Time expires = absl::InfiniteFuture();
  if (!args.expires_in.empty()) {
    absl::Duration d;
    if (!absl::ParseDuration(args.expires_in, &d) || d <= absl::ZeroDuration()) {
      std::cerr << fmt::format(
          "ferry: token create: --expires-in: \"{}\" is not a positive duration (e.g. "
          "720h)\n",
          args.expires_in);
      return 2;
    }
    expires = absl::Now() + d;
  }
  auto id_bytes = RandomBytes(6);
  auto secret = RandomBytes(32);
  auto salt = RandomBytes(16);
  if (!id_bytes || !secret || !salt) {
    std::cerr << "ferry: token create: the system's random generator failed\n";
    return 1;
  }
  const std::string id = args.id.empty() ? Hex(*id_bytes) : args.id;
  const std::string token = fmt::format("{}.{}", id, Hex(*secret));
  if (!security::WellFormedToken(token)) {
    std::cerr << "ferry: token create: --id: not 1..64 characters from A-Z a-z 0-9 _ -\n";
    return 2;
  }
  std::cout << token << "\n"
            << security::TokenLine(id, args.principal, Hex(*secret), *salt, expires)
            << "\n";
  return 0;
}

}  // namespace

void AddTokenCommands(CLI::App& app, Command& command) {
  CLI::App* token = app.add_subcommand("token", "Bearer tokens for auth.tokens_file");
  token->require_subcommand(1);
  auto args = std::make_shared<TokenArgs>();
  CLI::App* create = token->add_subcommand(
      "create", "Print a new token and its line for auth.tokens_file");
  create->add_option("--principal,-p", args->principal, "Who the token stands for")
      ->required();
  create->add_option("--id", args->id, "Token id (default: random)");
  create->add_option("--expires-in", args->expires_in, "e.g. 720h (default: never)");
  create->callback([args, &command] { command = [args] { return Create(*args); }; });
}

}  // namespace ferry::cli
