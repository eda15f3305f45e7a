#ifndef PRESENCE_TESTS_TESTING_TEST_PKI_H_
#define PRESENCE_TESTS_TESTING_TEST_PKI_H_

// A throwaway PKI for TLS tests, made with the openssl tool: a CA, and a
// server certificate (for 127.0.0.1) and a client certificate it signed.
// Files live under $TEST_TMPDIR. Not thread-safe; make one per test.

#include <cstdio>
#include <cstdlib>
#include <string>

namespace presence::testing {

struct TestPki {
  std::string dir, ca, ca_key, server_cert, server_key, client_cert, client_key;
  bool ok = false;

  explicit TestPki(const std::string& name = "pki") {
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir = std::string(tmp != nullptr ? tmp : "/tmp") + "/" + name;
    ca = dir + "/ca.pem";
    ca_key = dir + "/ca.key";
    server_cert = dir + "/server.pem";
    server_key = dir + "/server.key";
    client_cert = dir + "/client.pem";
    client_key = dir + "/client.key";
    std::string script =
        "set -e; mkdir -p " + dir + "; cd " + dir +
        "; printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext"
        "; openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=test-ca"
        "   -keyout ca.key -out ca.pem"
        "; for who in server client; do"
        "   openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout $who.key -out $who.csr;"
        "   openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1"
        "     -extfile san.ext -out $who.pem;"
        " done";
    // The script goes through a file: std::system's sh would expand $who.
    std::string script_file = dir + ".sh";
    FILE* f = std::fopen(script_file.c_str(), "w");
    if (f == nullptr) return;
    std::fputs(script.c_str(), f);
    std::fclose(f);
    std::string command = "bash " + script_file + " >/dev/null 2>&1";
    ok = std::system(command.c_str()) == 0;
  }
};

}  // namespace presence::testing

#endif  // PRESENCE_TESTS_TESTING_TEST_PKI_H_
