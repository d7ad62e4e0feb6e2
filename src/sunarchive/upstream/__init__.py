"""The upstream systems' own relations, tables, columns and file formats that are not
measurements (issue 18, ``docs/upstream/``): each system has a module or package here."""
