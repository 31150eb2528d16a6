"""Third-party-style provider plugins used to show that a backend is one module plus one registration."""
