"""certcentral-auditor: user-access reviews and tamper-evident evidence for DigiCert CertCentral."""

__version__ = "0.1.0"
