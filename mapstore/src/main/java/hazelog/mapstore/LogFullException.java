package hazelog.mapstore;

/**
 * The member holds as many entry bytes as it may (map-store property max-entry-bytes): the put
 * is refused before it takes any memory, instead of the member running out of heap.
 */
public final class LogFullException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public LogFullException(String message) {
        super(message);
    }
}
