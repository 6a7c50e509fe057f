//! Throwaway TLS material for tests: a CA, a server certificate for
//! `localhost` and `127.0.0.1`, and a client certificate, all PEM. Made
//! fresh per call (rcgen), so no test trusts another's CA.

use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair};

/// A CA and the two certificates it signed.
pub struct TestPki {
    pub ca: String,
    pub server_cert: String,
    pub server_key: String,
    pub client_cert: String,
    pub client_key: String,
}

impl TestPki {
    pub fn generate() -> TestPki {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
        let leaf = |names: &[&str], purpose: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().expect("key");
            let names = names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
            let mut params = CertificateParams::new(names).expect("params");
            params.extended_key_usages = vec![purpose];
            let cert = params.signed_by(&key, &ca, &ca_key).expect("certificate");
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = leaf(
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert, client_key) = leaf(&["test-client"], ExtendedKeyUsagePurpose::ClientAuth);
        TestPki {
            ca: ca.pem(),
            server_cert,
            server_key,
            client_cert,
            client_key,
        }
    }
}
