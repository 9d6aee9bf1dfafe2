#ifndef CASEBRIDGE_CSQLITE_SHIM_H
#define CASEBRIDGE_CSQLITE_SHIM_H
#include <sqlite3.h>

// SQLITE_TRANSIENT is a cast of -1 to a function pointer, which Swift cannot import.
static inline sqlite3_destructor_type cb_sqlite_transient(void) { return SQLITE_TRANSIENT; }
// sqlite3_db_config is variadic.
static inline int cb_sqlite_enable_defensive(sqlite3 *db) { return sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)0); }
// sqlite3_config is variadic: the page cache's methods, read and replaced before the first open.
static inline int cb_sqlite_get_pcache2(sqlite3_pcache_methods2 *methods) {
    return sqlite3_config(SQLITE_CONFIG_GETPCACHE2, methods);
}
static inline int cb_sqlite_set_pcache2(const sqlite3_pcache_methods2 *methods) {
    return sqlite3_config(SQLITE_CONFIG_PCACHE2, methods);
}
#endif
