package sqlite

import (
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"modernc.org/libc"
	lib "modernc.org/sqlite/lib"
)

// walVFSName names the VFS that Open uses: the platform's default VFS (unix
// on Linux) with one change, to the WAL file. SQLite writes each WAL frame
// as two writes, its 24-byte header and then its page, so a commit of 15
// frames made 30 pwrite calls, each 2-5 µs of the writer's time on a
// virtual machine (bench/README.md, "One write a commit"). This VFS
// gathers the contiguous writes to a WAL file in a buffer and writes them
// with one call before SQLite next does anything else with that file's
// contents: sync it (every commit, with synchronous=FULL), read or map it,
// truncate it, ask its size, pass it a file control, unlock or close it,
// or write somewhere that does not continue the buffer. Only the calls
// that do not touch the contents (lock, reserved-lock check, sector size,
// device characteristics, shared memory, unmapping) go straight through.
//
// What is durable when is unchanged: SQLite writes a commit's frames and
// then syncs the file, and the buffer is written before the sync. What
// others see is unchanged too, given synchronous=FULL, which Open always
// sets: a connection reads only frames that the WAL index lists as
// committed, and SQLite adds a commit's frames to the index after the
// sync. (With synchronous=NORMAL a commit is not synced, and another
// connection could read frames still in the buffer; Open never sets it.)
// Writes to the database file, its journal and the WAL index (shared
// memory) go straight to the default VFS.
const walVFSName = "airlock-wal"

// walBufferSize bounds the buffer of one WAL file: a write that would
// overflow it writes the buffer first. 512 KiB holds the frames of a batch
// of a few hundred creates (a create adds about one 4 KiB frame to a
// batch). A connection gets its buffer when it first writes to the WAL, so
// connections that only read have none.
const walBufferSize = 512 << 10

// useWALVFS is whether Open uses the VFS; benchmarks turn it off to
// compare.
var useWALVFS = true

var (
	walVFSOnce sync.Once
	walVFSErr  error

	// The VFS and the WAL files' methods live in Go globals, which never
	// move, so SQLite may keep pointers to them.
	walVFS     lib.Tsqlite3_vfs
	walMethods lib.Tsqlite3_io_methods
	baseVFS    uintptr // the default VFS, *lib.Tsqlite3_vfs
	extOffset  uintptr // where a file's walExt starts, after the default VFS's file

	// walWrites and walCalls count, for tests, the writes SQLite asked of
	// WAL files and the writes that reached the default VFS.
	walWrites, walCalls atomic.Int64

	// failWALWrites makes every write of a buffer fail, as a full disk
	// would: for tests.
	failWALWrites atomic.Bool
)

// walExt is what the VFS keeps with each open file, after the default VFS's
// own file structure, in memory SQLite allocated. Files other than a WAL
// keep base zero and the default VFS's methods.
type walExt struct {
	base  uintptr // the default VFS's methods for this file, *lib.Tsqlite3_io_methods
	buf   uintptr // walBufferSize bytes of C memory, from the first write
	start int64   // the file offset of buf's first byte
	n     int64   // bytes in buf
}

// registerWALVFS registers the VFS once per process.
func registerWALVFS() error {
	walVFSOnce.Do(func() { walVFSErr = register() })
	return walVFSErr
}

func register() error {
	tls := libc.NewTLS()
	defer tls.Close()
	baseVFS = lib.Xsqlite3_vfs_find(tls, 0)
	if baseVFS == 0 {
		return fmt.Errorf("sqlite: no default VFS to build on")
	}
	base := (*lib.Tsqlite3_vfs)(at(baseVFS))
	walVFS = *base
	walVFS.FpNext = 0
	extOffset = (uintptr(base.FszOsFile) + 7) &^ 7
	walVFS.FszOsFile = int32(extOffset + unsafe.Sizeof(walExt{}))
	name, err := libc.CString(walVFSName)
	if err != nil {
		return err
	}
	walVFS.FzName = name
	*(*func(*libc.TLS, uintptr, uintptr, uintptr, int32, uintptr) int32)(unsafe.Pointer(&walVFS.FxOpen)) = walOpen

	walMethods.FiVersion = 3
	*(*func(*libc.TLS, uintptr) int32)(unsafe.Pointer(&walMethods.FxClose)) = walClose
	*(*func(*libc.TLS, uintptr, uintptr, int32, int64) int32)(unsafe.Pointer(&walMethods.FxRead)) = walRead
	*(*func(*libc.TLS, uintptr, uintptr, int32, int64) int32)(unsafe.Pointer(&walMethods.FxWrite)) = walWrite
	*(*func(*libc.TLS, uintptr, int64) int32)(unsafe.Pointer(&walMethods.FxTruncate)) = walTruncate
	*(*func(*libc.TLS, uintptr, int32) int32)(unsafe.Pointer(&walMethods.FxSync)) = walSync
	*(*func(*libc.TLS, uintptr, uintptr) int32)(unsafe.Pointer(&walMethods.FxFileSize)) = walFileSize
	*(*func(*libc.TLS, uintptr, int32) int32)(unsafe.Pointer(&walMethods.FxLock)) = walLock
	*(*func(*libc.TLS, uintptr, int32) int32)(unsafe.Pointer(&walMethods.FxUnlock)) = walUnlock
	*(*func(*libc.TLS, uintptr, uintptr) int32)(unsafe.Pointer(&walMethods.FxCheckReservedLock)) = walCheckReservedLock
	*(*func(*libc.TLS, uintptr, int32, uintptr) int32)(unsafe.Pointer(&walMethods.FxFileControl)) = walFileControl
	*(*func(*libc.TLS, uintptr) int32)(unsafe.Pointer(&walMethods.FxSectorSize)) = walSectorSize
	*(*func(*libc.TLS, uintptr) int32)(unsafe.Pointer(&walMethods.FxDeviceCharacteristics)) = walDeviceCharacteristics
	*(*func(*libc.TLS, uintptr, int32, int32, int32, uintptr) int32)(unsafe.Pointer(&walMethods.FxShmMap)) = walShmMap
	*(*func(*libc.TLS, uintptr, int32, int32, int32) int32)(unsafe.Pointer(&walMethods.FxShmLock)) = walShmLock
	*(*func(*libc.TLS, uintptr))(unsafe.Pointer(&walMethods.FxShmBarrier)) = walShmBarrier
	*(*func(*libc.TLS, uintptr, int32) int32)(unsafe.Pointer(&walMethods.FxShmUnmap)) = walShmUnmap
	*(*func(*libc.TLS, uintptr, int64, int32, uintptr) int32)(unsafe.Pointer(&walMethods.FxFetch)) = walFetch
	*(*func(*libc.TLS, uintptr, int64, uintptr) int32)(unsafe.Pointer(&walMethods.FxUnfetch)) = walUnfetch

	if rc := lib.Xsqlite3_vfs_register(tls, uintptr(unsafe.Pointer(&walVFS)), 0); rc != lib.SQLITE_OK {
		return fmt.Errorf("sqlite: register VFS %s: error %d", walVFSName, rc)
	}
	return nil
}

// fn reinterprets a C function pointer as the Go function it is in
// modernc's translation of SQLite.
func fn[F any](p uintptr) F { return *(*F)(unsafe.Pointer(&struct{ uintptr }{p})) }

// at is the address p as a pointer. Every address here is SQLite's: memory
// it allocated (C memory, which the Go collector neither moves nor frees)
// or one of the Go globals above, which never move.
func at(p uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&p)) }

func ext(pFile uintptr) *walExt { return (*walExt)(at(pFile + extOffset)) }

func baseMethods(pFile uintptr) *lib.Tsqlite3_io_methods {
	return (*lib.Tsqlite3_io_methods)(at(ext(pFile).base))
}

func walOpen(tls *libc.TLS, pVfs, zName, pFile uintptr, flags int32, pOutFlags uintptr) int32 {
	e := ext(pFile)
	*e = walExt{}
	base := (*lib.Tsqlite3_vfs)(at(baseVFS))
	rc := fn[func(*libc.TLS, uintptr, uintptr, uintptr, int32, uintptr) int32](base.FxOpen)(tls, baseVFS, zName, pFile, flags, pOutFlags)
	f := (*lib.Tsqlite3_file)(at(pFile))
	if rc != lib.SQLITE_OK || flags&lib.SQLITE_OPEN_WAL == 0 || f.FpMethods == 0 {
		return rc
	}
	if (*lib.Tsqlite3_io_methods)(at(f.FpMethods)).FiVersion < 3 {
		return rc // a methods table without the calls this one forwards: leave the file alone
	}
	e.base = f.FpMethods
	f.FpMethods = uintptr(unsafe.Pointer(&walMethods))
	return rc
}

// flush writes the buffer, if it holds anything, with one call.
func flush(tls *libc.TLS, pFile uintptr) int32 {
	e := ext(pFile)
	if e.n == 0 {
		return lib.SQLITE_OK
	}
	if failWALWrites.Load() {
		e.n = 0
		return lib.SQLITE_IOERR_WRITE
	}
	write := fn[func(*libc.TLS, uintptr, uintptr, int32, int64) int32](baseMethods(pFile).FxWrite)
	for off := int64(0); off < e.n; off += maxWrite {
		walCalls.Add(1)
		if rc := write(tls, pFile, e.buf+uintptr(off), int32(min(maxWrite, e.n-off)), e.start+off); rc != lib.SQLITE_OK {
			e.n = 0
			return rc
		}
	}
	e.n = 0
	return lib.SQLITE_OK
}

// maxWrite is the most the unix VFS writes with one call: it masks the
// length of a write to 17 bits (seekAndWriteFd), so 124 KiB, whole pages.
const maxWrite = 0x1ffff &^ 4095

func walWrite(tls *libc.TLS, pFile, zBuf uintptr, iAmt int32, iOfst int64) int32 {
	walWrites.Add(1)
	e := ext(pFile)
	direct := int64(iAmt) > maxWrite // never with SQLite's page sizes, at most 64 KiB
	// A write that does not continue the buffer, or would overflow it,
	// comes after what the buffer holds; so does a rewrite of a frame
	// already in it, which SQLite makes when a transaction changes a page
	// twice.
	if e.n > 0 && (direct || iOfst != e.start+e.n || e.n+int64(iAmt) > walBufferSize) {
		if rc := flush(tls, pFile); rc != lib.SQLITE_OK {
			return rc
		}
	}
	if e.buf == 0 && !direct {
		e.buf = libc.Xmalloc(tls, walBufferSize) // 0 if there is no memory: write directly
	}
	if e.buf == 0 || direct {
		walCalls.Add(1)
		return fn[func(*libc.TLS, uintptr, uintptr, int32, int64) int32](baseMethods(pFile).FxWrite)(tls, pFile, zBuf, iAmt, iOfst)
	}
	if e.n == 0 {
		e.start = iOfst
	}
	copy(unsafe.Slice((*byte)(at(e.buf+uintptr(e.n))), iAmt), unsafe.Slice((*byte)(at(zBuf)), iAmt))
	e.n += int64(iAmt)
	return lib.SQLITE_OK
}

func walClose(tls *libc.TLS, pFile uintptr) int32 {
	rc := flush(tls, pFile)
	e := ext(pFile)
	methods := baseMethods(pFile)
	if e.buf != 0 {
		libc.Xfree(tls, e.buf)
	}
	*e = walExt{}
	if rc2 := fn[func(*libc.TLS, uintptr) int32](methods.FxClose)(tls, pFile); rc == lib.SQLITE_OK {
		rc = rc2
	}
	return rc
}

func walRead(tls *libc.TLS, pFile, zBuf uintptr, iAmt int32, iOfst int64) int32 {
	if rc := flush(tls, pFile); rc != lib.SQLITE_OK {
		return rc
	}
	return fn[func(*libc.TLS, uintptr, uintptr, int32, int64) int32](baseMethods(pFile).FxRead)(tls, pFile, zBuf, iAmt, iOfst)
}

func walTruncate(tls *libc.TLS, pFile uintptr, size int64) int32 {
	if rc := flush(tls, pFile); rc != lib.SQLITE_OK {
		return rc
	}
	return fn[func(*libc.TLS, uintptr, int64) int32](baseMethods(pFile).FxTruncate)(tls, pFile, size)
}

func walSync(tls *libc.TLS, pFile uintptr, flags int32) int32 {
	if rc := flush(tls, pFile); rc != lib.SQLITE_OK {
		return rc
	}
	return fn[func(*libc.TLS, uintptr, int32) int32](baseMethods(pFile).FxSync)(tls, pFile, flags)
}

func walFileSize(tls *libc.TLS, pFile, pSize uintptr) int32 {
	if rc := flush(tls, pFile); rc != lib.SQLITE_OK {
		return rc
	}
	return fn[func(*libc.TLS, uintptr, uintptr) int32](baseMethods(pFile).FxFileSize)(tls, pFile, pSize)
}

func walLock(tls *libc.TLS, pFile uintptr, lock int32) int32 {
	return fn[func(*libc.TLS, uintptr, int32) int32](baseMethods(pFile).FxLock)(tls, pFile, lock)
}

func walUnlock(tls *libc.TLS, pFile uintptr, lock int32) int32 {
	if rc := flush(tls, pFile); rc != lib.SQLITE_OK {
		return rc
	}
	return fn[func(*libc.TLS, uintptr, int32) int32](baseMethods(pFile).FxUnlock)(tls, pFile, lock)
}

func walCheckReservedLock(tls *libc.TLS, pFile, pResOut uintptr) int32 {
	return fn[func(*libc.TLS, uintptr, uintptr) int32](baseMethods(pFile).FxCheckReservedLock)(tls, pFile, pResOut)
}

func walFileControl(tls *libc.TLS, pFile uintptr, op int32, pArg uintptr) int32 {
	if rc := flush(tls, pFile); rc != lib.SQLITE_OK {
		return rc
	}
	return fn[func(*libc.TLS, uintptr, int32, uintptr) int32](baseMethods(pFile).FxFileControl)(tls, pFile, op, pArg)
}

func walSectorSize(tls *libc.TLS, pFile uintptr) int32 {
	return fn[func(*libc.TLS, uintptr) int32](baseMethods(pFile).FxSectorSize)(tls, pFile)
}

func walDeviceCharacteristics(tls *libc.TLS, pFile uintptr) int32 {
	return fn[func(*libc.TLS, uintptr) int32](baseMethods(pFile).FxDeviceCharacteristics)(tls, pFile)
}

func walShmMap(tls *libc.TLS, pFile uintptr, iPg, pgsz, bExtend int32, pp uintptr) int32 {
	return fn[func(*libc.TLS, uintptr, int32, int32, int32, uintptr) int32](baseMethods(pFile).FxShmMap)(tls, pFile, iPg, pgsz, bExtend, pp)
}

func walShmLock(tls *libc.TLS, pFile uintptr, offset, n, flags int32) int32 {
	return fn[func(*libc.TLS, uintptr, int32, int32, int32) int32](baseMethods(pFile).FxShmLock)(tls, pFile, offset, n, flags)
}

func walShmBarrier(tls *libc.TLS, pFile uintptr) {
	fn[func(*libc.TLS, uintptr)](baseMethods(pFile).FxShmBarrier)(tls, pFile)
}

func walShmUnmap(tls *libc.TLS, pFile uintptr, deleteFlag int32) int32 {
	return fn[func(*libc.TLS, uintptr, int32) int32](baseMethods(pFile).FxShmUnmap)(tls, pFile, deleteFlag)
}

func walFetch(tls *libc.TLS, pFile uintptr, iOfst int64, iAmt int32, pp uintptr) int32 {
	if rc := flush(tls, pFile); rc != lib.SQLITE_OK {
		return rc
	}
	return fn[func(*libc.TLS, uintptr, int64, int32, uintptr) int32](baseMethods(pFile).FxFetch)(tls, pFile, iOfst, iAmt, pp)
}

func walUnfetch(tls *libc.TLS, pFile uintptr, iOfst int64, p uintptr) int32 {
	return fn[func(*libc.TLS, uintptr, int64, uintptr) int32](baseMethods(pFile).FxUnfetch)(tls, pFile, iOfst, p)
}
