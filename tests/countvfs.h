/*
 * countvfs.h: a VFS in front of SQLite's default one that counts the syncs
 * of write-ahead logs (tests only).  Every method is passed through
 * unchanged, so a test sees which commits flush the disk.
 */
#ifndef KP_TEST_COUNTVFS_H
#define KP_TEST_COUNTVFS_H

/* Make it the default VFS (connections opened from now on go through it). */
void countvfs_install(void);
/* SQLite's own default again. */
void countvfs_remove(void);
/* Syncs of a -wal file so far by the thread that installed it (the
 * store's checkpoint thread syncs on its own schedule). */
int countvfs_wal_syncs(void);

#endif
