// A small IndexedDB store of the page's own: one object store in its own
// database, each request in its own transaction, the database closed after.

/** `(mode, action) => Promise`: runs `action(objectStore)` in a transaction of `mode`
 * and resolves to its request's result once the transaction completed. */
export function keptIn(database, store) {
  const open = () =>
    new Promise((resolve, reject) => {
      const request = indexedDB.open(database, 1);
      request.onupgradeneeded = () => request.result.createObjectStore(store);
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  return async (mode, action) => {
    const opened = await open();
    try {
      return await new Promise((resolve, reject) => {
        const transaction = opened.transaction(store, mode);
        const request = action(transaction.objectStore(store));
        transaction.oncomplete = () => resolve(request.result);
        transaction.onerror = () => reject(transaction.error);
      });
    } finally {
      opened.close();
    }
  };
}
