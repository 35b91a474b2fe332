"""The only modules of sitsmap that open files.

Everything here takes paths and returns arrays, data frames or plain objects;
nothing here decides science.
"""
