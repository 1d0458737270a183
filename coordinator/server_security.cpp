#include "server_security.h"

#include <stdexcept>

#include "secrets.h"

namespace ts {

std::shared_ptr<grpc::ServerCredentials> server_credentials(const RunOptions& o) {
  if (o.tls_cert.empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions tls(
      o.tls_ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                       : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  tls.pem_key_cert_pairs.push_back({read_pem("--tls-key", o.tls_key), read_pem("--tls-cert", o.tls_cert)});
  if (!o.tls_ca.empty()) tls.pem_root_certs = read_pem("--tls-ca", o.tls_ca);
  return grpc::SslServerCredentials(tls);
}

std::vector<std::string> worker_tls_environment(const RunOptions& o) {
  if (o.tls_cert.empty()) return {};
  std::vector<std::string> env = {"THREADSPLIT_TLS_CA=" + (o.tls_ca.empty() ? o.tls_cert : o.tls_ca)};
  if (!o.tls_ca.empty()) {
    env.push_back("THREADSPLIT_TLS_CERT=" + o.tls_cert);
    env.push_back("THREADSPLIT_TLS_KEY=" + o.tls_key);
  }
  return env;
}

void exclusive_port(grpc::ServerBuilder& builder) {
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

}  // namespace ts
