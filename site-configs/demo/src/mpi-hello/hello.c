#include <mpi.h>
#include <stdio.h>

/* Each rank says hello; rank 0 also names the MPI library it runs on. */
int main(int argc, char **argv) {
    int rank, size, len;
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Get_library_version(version, &len);
    if (rank == 0) {
        char *nl = version;
        while (*nl && *nl != '\n' && *nl != ',') nl++;
        *nl = '\0';
        printf("library: %s\n", version);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    printf("hello from rank %d of %d\n", rank, size);
    MPI_Finalize();
    return 0;
}
