package hazelog.mapstore;

/**
 * PostgreSQL could not take or give the entries. Thrown out of the MapStore so that the map
 * operation fails (nothing is put in memory) and the client sees why.
 */
public final class StoreUnavailableException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public StoreUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
