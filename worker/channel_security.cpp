#include "channel_security.h"

#include <stdexcept>

#include "secrets.h"

namespace ts {

std::shared_ptr<grpc::ChannelCredentials> channel_credentials(const ChannelSecurity& s) {
  if (s.ca.empty() && s.cert.empty()) return grpc::InsecureChannelCredentials();
  if (s.ca.empty()) throw std::invalid_argument("a TLS client certificate needs THREADSPLIT_TLS_CA too");
  if (s.cert.empty() != s.key.empty())
    throw std::invalid_argument("THREADSPLIT_TLS_CERT and THREADSPLIT_TLS_KEY go together");
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = read_pem("THREADSPLIT_TLS_CA", s.ca);
  if (!s.cert.empty()) {
    o.pem_cert_chain = read_pem("THREADSPLIT_TLS_CERT", s.cert);
    o.pem_private_key = read_pem("THREADSPLIT_TLS_KEY", s.key);
  }
  return grpc::SslCredentials(o);
}

}  // namespace ts
