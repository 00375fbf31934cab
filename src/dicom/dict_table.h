/*
 * dict_table.h - the tables that tools/gen_dict.py generates into dict_table.c, declared once
 * for the generated file and for dict.c (which searches them). Internal to the dictionary.
 */
#ifndef DCM_DICT_TABLE_H
#define DCM_DICT_TABLE_H

#include "dict.h"

extern const dcm_dict_entry dcm_dict_pub_tab[];
extern const unsigned dcm_dict_pub_n;
extern const dcm_dict_entry dcm_dict_rep_tab[];
extern const unsigned dcm_dict_rep_n;
extern const uint16_t dcm_dict_kw_tab[];
extern const unsigned dcm_dict_kw_n;
extern const dcm_dict_entry dcm_dict_priv_tab[];
extern const unsigned dcm_dict_priv_n;
extern const char *const dcm_dict_creator_tab[];
extern const uint16_t dcm_dict_creator_first[];
extern const unsigned dcm_dict_creator_n;

#endif
