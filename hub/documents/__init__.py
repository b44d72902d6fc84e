"""The official documents (Decree 30/2020/NĐ-CP layout) and the printable access sheet."""
