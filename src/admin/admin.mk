# src/admin/admin.mk -- included by Makefile.am: turnstone-admin and the Redis
# credential modules (issue 4).
