/*
 * fuzzy.h - QIDO-RS fuzzymatching=true for person names (PS3.18 8.3.4.3 leaves the method to
 * the server): case- and accent-insensitive, each word of the key a prefix of some word of
 * the name. "joh" matches "Doe^John", "dupo^je" matches "Dupont^Jean", "muller" matches
 * "Müller^Anna"; "smith" does not match "Doe^John". Words are split at ^ = space , - . '
 * (name components, groups and the punctuation inside them); in the key, * stands for the
 * rest of a word and ? for any one character, as in C-FIND patterns.
 */
#ifndef HTTP_FUZZY_H
#define HTTP_FUZZY_H

/* Does the name (UTF-8 PN value, alternatives not split) match the key (UTF-8)? 1 or 0.
   A key with no words matches everything. */
int dw_fuzzy_match(const char *key, const char *name);

#endif
