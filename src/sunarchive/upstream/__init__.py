"""The upstream systems' own relations and file formats that are not measurements
(``docs/upstream/``): each system has a package here."""
