#include "cli.h"
int cmd_import(int c, char **v){(void)c;(void)v;return 2;}
int cmd_export(int c, char **v){(void)c;(void)v;return 2;}
