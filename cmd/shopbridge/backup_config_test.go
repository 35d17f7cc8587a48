package main

import (
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBackupOptions: backup-dir, backup-every and backup-keep follow the
// rules of every run option (flag > env > file > default), the default
// folder follows --data, none turns backups off, and a bad value names
// where it came from.
func TestBackupOptions(t *testing.T) {
	empty := writeConfig(t, "")
	c := mustParse(t, []string{"--config", empty, "--data", "/srv/sb"}, env{})
	if c.BackupDir != filepath.Join("/srv/sb", "backups") || c.BackupEvery != 24*time.Hour || c.BackupKeep != 7 {
		t.Errorf("defaults with --data /srv/sb: %q %s %d", c.BackupDir, c.BackupEvery, c.BackupKeep)
	}
	file := writeConfig(t, "backup_dir = \"/file/bk\"\nbackup-every = \"12h\"\nbackup_keep = 3\n")
	c = mustParse(t, []string{"--config", file}, env{})
	if c.BackupDir != "/file/bk" || c.BackupEvery != 12*time.Hour || c.BackupKeep != 3 {
		t.Errorf("from the file: %q %s %d", c.BackupDir, c.BackupEvery, c.BackupKeep)
	}
	c = mustParse(t, []string{"--config", file, "--backup-keep", "9"}, env{"SHOPBRIDGE_BACKUP_DIR": "none", "SHOPBRIDGE_BACKUP_KEEP": "5"})
	if c.BackupDir != "" || c.BackupKeep != 9 || c.BackupEvery != 12*time.Hour {
		t.Errorf("env none, flag keep 9: %q %s %d", c.BackupDir, c.BackupEvery, c.BackupKeep)
	}
	for _, tt := range []struct {
		name string
		args []string
		env  env
		want string
	}{
		{"every not a duration", []string{"--backup-every", "daily"}, nil, `--backup-every: want a duration of at least 1s such as 24h, got "daily"`},
		{"every too short", nil, env{"SHOPBRIDGE_BACKUP_EVERY": "10ms"}, `SHOPBRIDGE_BACKUP_EVERY: want a duration of at least 1s`},
		{"keep zero", []string{"--backup-keep", "0"}, nil, `--backup-keep: want a number from 1 to 1000, got "0"`},
		{"keep in the file", []string{"--config", writeConfig(t, "backup-keep = \"many\"")}, nil, `key backup-keep: want a number from 1 to 1000, got "many"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if len(args) == 0 || args[0] != "--config" {
				args = append([]string{"--config", empty}, args...)
			}
			_, err := parseRunArgs(args, tt.env.lookup, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
